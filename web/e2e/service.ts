// Starts the real service binary on a fresh database for the browser test, and mints tokens
// with the same CLI an operator uses.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const webDir = fileURLToPath(new URL("..", import.meta.url));
const repoDir = join(webDir, "..");

/** SQLite always; PostgreSQL too when LIBRARY_TEST_POSTGRES_URL names a server (as in CI). */
export function backends(): { name: string; postgresUrl?: string }[] {
  const postgresUrl = process.env.LIBRARY_TEST_POSTGRES_URL;
  return postgresUrl ? [{ name: "sqlite" }, { name: "postgres", postgresUrl }] : [{ name: "sqlite" }];
}

/** Builds the debug binary unless it is current (cargo decides), as `cargo test` leaves it. */
export function buildService(): string {
  execFileSync("cargo", ["build", "--locked", "--quiet", "--bin", "library-service"], {
    cwd: repoDir,
    stdio: "inherit",
  });
  return join(process.env.CARGO_TARGET_DIR ?? join(repoDir, "target"), "debug", "library-service");
}

export class RunningService {
  private constructor(
    readonly url: string,
    private readonly binary: string,
    private readonly secret: string,
    private readonly child: ChildProcess,
    private readonly cleanup: () => void,
    readonly logs: string[],
  ) {}

  static async start(binary: string, backend: { postgresUrl?: string }, extra: string[]): Promise<RunningService> {
    const dataDir = mkdtempSync(join(tmpdir(), "library-e2e-"));
    const secret = randomBytes(32).toString("hex");
    let databaseUrl = `sqlite://${join(dataDir, "library.db")}`;
    let dropDatabase = () => {};
    if (backend.postgresUrl) {
      const name = `library_e2e_${randomBytes(6).toString("hex")}`;
      execFileSync("psql", ["-q", "-v", "ON_ERROR_STOP=1", backend.postgresUrl, "-c", `CREATE DATABASE ${name}`]);
      const url = new URL(backend.postgresUrl);
      url.pathname = `/${name}`;
      databaseUrl = url.toString();
      dropDatabase = () =>
        execFileSync("psql", ["-q", backend.postgresUrl ?? "", "-c", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
    }
    const child = spawn(
      binary,
      [
        "--log-format", "json",
        "--database-url", databaseUrl,
        "--data-dir", dataDir,
        "--jwt-secret", secret,
        "--jwt-leeway-seconds", "0",
        "serve",
        "--listen", "127.0.0.1:0",
        "--web-root", join(webDir, "dist"),
        ...extra,
      ],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, RUST_LOG: "info" } },
    );
    const logs: string[] = [];
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the service did not start:\n${logs.join("\n")}`)), 60_000);
      child.once("exit", (code) => reject(new Error(`the service exited (${code}):\n${logs.join("\n")}`)));
      createInterface({ input: child.stderr! }).on("line", (line) => {
        logs.push(line);
        try {
          const event = JSON.parse(line) as { message?: string; addr?: string };
          if (event.message === "serving gRPC and gRPC-web" && event.addr) {
            clearTimeout(timer);
            resolve(event.addr);
          }
        } catch {
          // Not every line a process prints is a log event.
        }
      });
    });
    const cleanup = () => {
      rmSync(dataDir, { recursive: true, force: true });
      dropDatabase();
    };
    return new RunningService(`http://${address}`, binary, secret, child, cleanup, logs);
  }

  /** A listener's session token, from `library-service token`. */
  token(subject: string, ttlSeconds = 3600): string {
    return execFileSync(
      this.binary,
      ["--jwt-secret", this.secret, "token", "--sub", subject, "--ttl", String(ttlSeconds)],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    ).trim();
  }

  async stop() {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      await exited;
    }
    this.cleanup();
  }
}
