// Runs the platform's gateway (deploy/gateway/library.conf.template) in Debian's nginx for a test:
// an nginx of its own (prefix, pid file, temp paths, logs) on a free port, with a certificate
// from a test CA made here with the openssl CLI, in front of the replicas it is given.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { webDir } from "./service.ts";

export const NGINX = process.env.NGINX_PATH ?? "/usr/sbin/nginx";
const TEMPLATE = join(webDir, "..", "deploy", "gateway", "library.conf.template");

/** The response header only the test's configuration adds: the replica that answered. */
export const UPSTREAM_HEADER = "x-library-upstream";

/** A port nothing listens on now (the kernel's choice), for a process that cannot take port 0. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** A CA and a server certificate it signed for localhost and 127.0.0.1. */
export interface TestCertificates {
  caPath: string;
  certPath: string;
  keyPath: string;
  /** base64 SHA-256 of the server key's SubjectPublicKeyInfo, for Chromium's SPKI pin. */
  spki: string;
}

export function makeCertificates(dir: string): TestCertificates {
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=library gateway test CA", "-keyout", path("ca.key"), "-out", path("ca.pem"));
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-subj", "/CN=localhost", "-keyout", path("gateway.key"), "-out", path("gateway.csr"));
  writeFileSync(
    path("gateway.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
  );
  openssl("x509", "-req", "-in", path("gateway.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
    "-CAcreateserial", "-days", "2", "-extfile", path("gateway.ext"), "-out", path("gateway.pem"));
  const der = execFileSync("openssl", ["pkey", "-in", path("gateway.key"), "-pubout", "-outform", "DER"]);
  const spki = execFileSync("openssl", ["dgst", "-sha256", "-binary"], { input: der }).toString("base64");
  return { caPath: path("ca.pem"), certPath: path("gateway.pem"), keyPath: path("gateway.key"), spki };
}

/** The template with every placeholder filled; refuses to leave one unfilled. */
export function renderTemplate(values: Record<string, string>): string {
  let text = readFileSync(TEMPLATE, "utf8");
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`\${${name}}`, value);
  const missing = text.match(/\$\{LIBRARY_GATEWAY_[A-Z_]+\}/);
  if (missing) throw new Error(`placeholder ${missing[0]} of ${TEMPLATE} not filled`);
  return text;
}

export interface GatewayOptions {
  /** Replica addresses, `host:port`. */
  upstreams: string[];
  /** Regex of the browser origins allowed (the template's LIBRARY_GATEWAY_CORS_ORIGINS); by
   * default the site's origin. */
  corsOrigins?: string;
  /** A folder served on a second, plain HTTP port: the rest of the site, another origin. */
  siteRoot?: string;
}

export class RunningGateway {
  private constructor(
    /** `https://localhost:PORT` */
    readonly url: string,
    /** `http://127.0.0.1:PORT` when a site root was given. */
    readonly siteUrl: string | undefined,
    readonly certificates: TestCertificates,
    private readonly prefix: string,
    private readonly child: ChildProcess,
  ) {}

  static async start(options: GatewayOptions): Promise<RunningGateway> {
    if (!existsSync(NGINX)) {
      throw new Error(`nginx is needed at ${NGINX} (apt-get install nginx, or set NGINX_PATH)`);
    }
    const prefix = mkdtempSync(join(tmpdir(), "library-gateway-"));
    const port = await freePort();
    const sitePort = options.siteRoot ? await freePort() : undefined;
    const certificates = makeCertificates(prefix);
    const siteUrl = sitePort ? `http://127.0.0.1:${sitePort}` : undefined;
    const corsOrigins = options.corsOrigins ?? (siteUrl ? `^${siteUrl.replaceAll(".", "\\.")}$` : "^$");
    mkdirSync(join(prefix, "library-gateway.d"));
    mkdirSync(join(prefix, "temp"));
    // Only the test names the replica that answered: production does not show its pods' addresses.
    writeFileSync(
      join(prefix, "library-gateway.d", "upstream-header.conf"),
      `add_header ${UPSTREAM_HEADER} $upstream_addr always;\n`,
    );
    writeFileSync(
      join(prefix, "library.conf"),
      renderTemplate({
        LIBRARY_GATEWAY_LISTEN: `127.0.0.1:${port}`,
        LIBRARY_GATEWAY_TLS_CERT: certificates.certPath,
        LIBRARY_GATEWAY_TLS_KEY: certificates.keyPath,
        LIBRARY_GATEWAY_UPSTREAM_SERVERS: options.upstreams.map((u) => `server ${u};`).join(" "),
        LIBRARY_GATEWAY_CORS_ORIGINS: corsOrigins,
      }),
    );
    const temp = (name: string) => `${name}_temp_path ${join(prefix, "temp", name)};`;
    const site = sitePort
      ? `server { listen 127.0.0.1:${sitePort}; root ${options.siteRoot}; }`
      : "";
    writeFileSync(
      join(prefix, "nginx.conf"),
      [
        // As root (CI), workers would become "nobody" and could not read the test's files.
        process.getuid?.() === 0 ? "user root root;" : "",
        "worker_processes 1;",
        `pid ${join(prefix, "nginx.pid")};`,
        `error_log ${join(prefix, "error.log")} info;`,
        "events { worker_connections 1024; }",
        "http {",
        "  types { text/html html; text/javascript js; text/css css; }",
        `  log_format upstreams '$request_method $uri $server_protocol $http_content_type $status $upstream_addr';`,
        `  access_log ${join(prefix, "access.log")} upstreams;`,
        `  ${temp("client_body")} ${temp("proxy")} ${temp("fastcgi")} ${temp("uwsgi")} ${temp("scgi")}`,
        "  include library.conf;",
        `  ${site}`,
        "}",
      ].join("\n"),
    );
    const child = spawn(NGINX, ["-p", prefix, "-c", join(prefix, "nginx.conf"), "-e", join(prefix, "error.log"), "-g", "daemon off;"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const gateway = new RunningGateway(
      `https://localhost:${port}`,
      siteUrl,
      certificates,
      prefix,
      child,
    );
    await gateway.waitForPort(port, () => `nginx did not start:\n${stderr}\n${gateway.errorLog()}`);
    return gateway;
  }

  /** What nginx logged for each request: method, path, protocol, content type, status, replica(s)
   * tried. */
  accessLog(): string[] {
    const path = join(this.prefix, "access.log");
    return existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean) : [];
  }

  errorLog(): string {
    const path = join(this.prefix, "error.log");
    return existsSync(path) ? readFileSync(path, "utf8") : "";
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.prefix, { recursive: true, force: true });
  }

  private async waitForPort(port: number, failure: () => string) {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(failure());
      const open = await new Promise<boolean>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.end();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
      if (open) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(failure());
  }
}

