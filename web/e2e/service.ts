// Starts the real service binary on a fresh database for the browser test, and mints tokens
// with the same CLI an operator uses. A second replica can serve the same database, and a
// replica can be restarted on its own address.
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

/** What replicas of one service share: the database and the token secret. */
interface Shared {
  databaseUrl: string;
  secret: string;
}

export class RunningService {
  private constructor(
    readonly url: string,
    private readonly binary: string,
    private readonly shared: Shared,
    private readonly extra: string[],
    private child: ChildProcess,
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
    const shared = { databaseUrl, secret };
    const logs: string[] = [];
    const cleanup = () => {
      rmSync(dataDir, { recursive: true, force: true });
      dropDatabase();
    };
    const { child, address } = await launch(binary, shared, dataDir, "127.0.0.1:0", extra, logs).catch((error) => {
      cleanup();
      throw error;
    });
    return new RunningService(`http://${address}`, binary, shared, extra, child, cleanup, logs);
  }

  /** Another process on the same database (PostgreSQL: SQLite's file is one process's). */
  async replica(extra: string[] = this.extra): Promise<RunningService> {
    const dataDir = mkdtempSync(join(tmpdir(), "library-e2e-"));
    const logs: string[] = [];
    const cleanup = () => rmSync(dataDir, { recursive: true, force: true });
    const { child, address } = await launch(this.binary, this.shared, dataDir, "127.0.0.1:0", extra, logs);
    return new RunningService(`http://${address}`, this.binary, this.shared, extra, child, cleanup, logs);
  }

  /** Stops the process, as a deployment does (SIGTERM: open streams end with UNAVAILABLE after
   * the shutdown grace), keeping its data. */
  async halt() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      await exited;
    }
  }

  /** Kills the process without warning (SIGKILL), as a crashed node or an OOM kill would: no
   * stream is ended, no connection closed cleanly. `resume` starts it again. */
  async kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGKILL");
      await exited;
    }
  }

  /** `host:port`, as a proxy names it. */
  get address(): string {
    return new URL(this.url).host;
  }

  /** Starts the process again on the same address and data, after `halt`. */
  async resume() {
    const dataDir = this.dataDirOf();
    const { child } = await launch(this.binary, this.shared, dataDir, new URL(this.url).host, this.extra, this.logs);
    this.child = child;
  }

  /** A listener's session token, from `library-service token`. */
  token(subject: string, ttlSeconds = 3600): string {
    return execFileSync(
      this.binary,
      ["--jwt-secret", this.shared.secret, "token", "--sub", subject, "--ttl", String(ttlSeconds)],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    ).trim();
  }

  async stop() {
    await this.halt();
    this.cleanup();
  }

  private dataDirOf(): string {
    const args = this.child.spawnargs;
    return args[args.indexOf("--data-dir") + 1] ?? "";
  }
}

/** Spawns the service and waits until it says where it listens. */
async function launch(
  binary: string,
  { databaseUrl, secret }: Shared,
  dataDir: string,
  listen: string,
  extra: string[],
  logs: string[],
): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(
    binary,
    [
      "--log-format", "json",
      "--database-url", databaseUrl,
      "--data-dir", dataDir,
      "--jwt-secret", secret,
      "--jwt-leeway-seconds", "0",
      "serve",
      "--listen", listen,
      "--web-root", join(webDir, "dist"),
      ...extra,
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, RUST_LOG: "info" } },
  );
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
  return { child, address };
}
