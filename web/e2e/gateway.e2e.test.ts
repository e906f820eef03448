// The platform's gateway (deploy/gateway/library.conf.template, in Debian's nginx) in front of two
// replicas of the real service on one PostgreSQL database, reached over HTTPS with a test CA:
// the page and its gRPC-web calls from Chromium, gRPC from buf curl and connect-node, calls
// balanced per call across the replicas, and what clients see when a replica is killed.
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type CallOptions, type Client, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { type Browser, chromium, type Page } from "playwright-core";
import { build } from "vite";
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from "vitest";

import { LibraryService } from "../src/gen/audiohm/library/v1/library_pb.ts";
import { RunningGateway, UPSTREAM_HEADER } from "./gateway.ts";
import { buildService, RunningService, webDir } from "./service.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(webDir, "test-results");
const BUF = join(webDir, "node_modules", ".bin", "buf");
const POSTGRES_URL = process.env.LIBRARY_TEST_POSTGRES_URL;
const HOUR = 3600 * 1000;
/** Plays of the listener whose history is read while a replica dies. */
const LONG_HISTORY = 200_000;

type Library = Client<typeof LibraryService>;

if (!POSTGRES_URL) {
  // Two replicas need one database they both reach; SQLite's file is one process's.
  console.warn("gateway e2e skipped: set LIBRARY_TEST_POSTGRES_URL (CI does)");
}

describe("The gateway's configuration", () => {
  test("the Kubernetes ConfigMap carries the tested template unchanged", () => {
    const repo = join(webDir, "..");
    const template = readFileSync(join(repo, "deploy", "gateway", "library.conf.template"), "utf8");
    const manifest = readFileSync(join(repo, "deploy", "kubernetes.yaml"), "utf8").split("\n");
    const start = manifest.indexOf("  library.conf.template: |") + 1;
    expect(start).toBeGreaterThan(0);
    const end = manifest.findIndex((line, i) => i >= start && line !== "" && !line.startsWith("    "));
    const embedded = manifest.slice(start, end).map((line) => line.slice(4));
    expect(`${embedded.join("\n").trimEnd()}\n`).toBe(template);
  });
});

describe.skipIf(!POSTGRES_URL)("The gateway in front of two replicas", () => {
  let a: RunningService;
  let b: RunningService;
  let gateway: RunningGateway;
  let site: string;
  let browser: Browser;
  let ca: Buffer;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const binary = buildService();
    // Quotas well above what the tests send: they are not what is tested here.
    const flags = [
      "--shutdown-grace", "1",
      "--rate-writes-per-minute", "100000",
      "--rate-reads-per-minute", "100000",
      "--rate-streams-per-minute", "10000",
    ];
    a = await RunningService.start(binary, { postgresUrl: POSTGRES_URL }, flags);
    b = await a.replica();
    site = mkdtempSync(join(tmpdir(), "library-site-"));
    gateway = await RunningGateway.start({ upstreams: [a.address, b.address], siteRoot: site });
    ca = readFileSync(gateway.certificates.caPath);
    // The page as the rest of the site hosts it: built to call the gateway, on another origin.
    process.env.VITE_LIBRARY_URL = gateway.url;
    try {
      await build({ root: webDir, logLevel: "silent", build: { outDir: site, emptyOutDir: true } });
    } finally {
      delete process.env.VITE_LIBRARY_URL;
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        // Trust the gateway's key (from the test CA), and only it.
        `--ignore-certificate-errors-spki-list=${gateway.certificates.spki}`,
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await b?.stop();
    await a?.stop();
    if (site) rmSync(site, { recursive: true, force: true });
  });

  const logsOnFailure = () =>
    onTestFailed(() => {
      console.error(`gateway error log:\n${gateway.errorLog().split("\n").slice(-30).join("\n")}`);
      console.error(`gateway access log:\n${gateway.accessLog().slice(-30).join("\n")}`);
      console.error(`replica A:\n${a.logs.slice(-15).join("\n")}`);
      console.error(`replica B:\n${b.logs.slice(-15).join("\n")}`);
    });

  /** gRPC (HTTP/2) through the gateway, trusting the test CA, as a listener. */
  function grpcClient(subject: string): Library {
    const token = a.token(subject);
    return createClient(
      LibraryService,
      createGrpcTransport({
        baseUrl: gateway.url,
        nodeOptions: { ca },
        interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
      }),
    );
  }

  /** `buf curl` as an operator runs it, trusting the test CA. */
  function bufCurl(args: string[], input?: string): string {
    return execFileSync(BUF, ["curl", "--protocol", "grpc", "--cacert", gateway.certificates.caPath, ...args], {
      encoding: "utf8",
      input,
      stdio: ["pipe", "pipe", "pipe"],
    });
  }

  /** Which replica (`host:port`) answered a call, from the header the test's nginx adds. */
  const upstreamOf = (headers: Headers) => headers.get(UPSTREAM_HEADER) ?? "";
  const replicaCalls = (replica: RunningService, method: string) =>
    replica.logs.filter((l) => l.includes('"message":"call"') && l.includes(`"method":"${method}"`)).length;

  async function recordHistory(api: Library, plays: number) {
    const now = Date.now();
    const { recordedCount } = await api.recordPlays({
      plays: Array.from({ length: plays }, (_, i) => ({
        trackId: randomUUID(),
        playedForSeconds: 200,
        completed: true,
        source: "album",
        playedAt: timestampFromDate(new Date(now - (i + 1) * HOUR)),
      })),
    });
    expect(recordedCount).toBe(plays);
  }

  describe("for browsers", () => {
    const listener = randomUUID();
    let page: Page;
    const upstreams: string[] = [];
    const pageErrors: string[] = [];

    beforeAll(async () => {
      await recordHistory(grpcClient(listener), 60);
      page = await browser.newPage();
      page.on("pageerror", (error) => pageErrors.push(error.message));
      page.on("response", (response) => {
        if (response.request().headers()["content-type"]?.startsWith("application/grpc-web")) {
          upstreams.push(response.headers()[UPSTREAM_HEADER] ?? "");
        }
      });
    });

    afterAll(async () => {
      await page?.close();
    });

    const shot = (name: string) =>
      onTestFailed(async () => {
        await page?.screenshot({ path: join(ARTIFACTS, `gateway-${name}-failed.png`), fullPage: true });
      });

    test("serves the page over HTTPS, and its gRPC-web calls, over HTTP/2, reach both replicas", async () => {
      logsOnFailure();
      shot("same-origin");
      await page.goto(gateway.url);
      await page.getByLabel("Token").fill(a.token(listener));
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect.poll(() => page.locator("#history-status").innerText()).toBe("50 plays shown");
      await expect.poll(() => page.locator("#live").getAttribute("data-state")).toBe("live");
      expect(await page.locator("#stats-cards").innerText()).toMatch(/Plays\s+60\b/i);
      // The page's calls went to both replicas: balanced per call, not per connection.
      expect(new Set(upstreams)).toEqual(new Set([a.address, b.address]));
      const browserCalls = gateway.accessLog().filter((l) => l.includes(" application/grpc-web"));
      expect(browserCalls.length).toBeGreaterThan(0);
      expect(browserCalls.every((l) => l.includes(" HTTP/2.0 "))).toBe(true);
      expect(pageErrors).toEqual([]);
    });

    test("streams WatchLibrary's events to the page as they come", async () => {
      logsOnFailure();
      shot("live");
      // Written through the gateway (to either replica); the page's watch is on one of them.
      for (let i = 0; i < 2; i++) {
        const { play } = await grpcClient(listener).recordPlay({ trackId: randomUUID(), playedForSeconds: 90 });
        await expect
          .poll(() => page.locator("#history tr").first().getAttribute("data-play"), { timeout: 1000, interval: 25 })
          .toBe(play?.id);
      }
    });

    test("works from the site's own origin: nginx answers the CORS preflight and exposes the gRPC and quota headers", async () => {
      logsOnFailure();
      shot("cross-origin");
      const other = await browser.newPage();
      try {
        const before = gateway.accessLog().length;
        await other.goto(gateway.siteUrl ?? "");
        await other.getByLabel("Token").fill(a.token(listener));
        await other.getByRole("button", { name: "Sign in" }).click();
        await expect.poll(() => other.locator("#history-status").innerText()).toBe("50 plays shown");
        await expect.poll(() => other.locator("#live").getAttribute("data-state")).toBe("live");
        // Preflights were answered by nginx itself ("-": no replica asked).
        const preflights = gateway.accessLog().slice(before).filter((l) => l.startsWith("OPTIONS "));
        expect(preflights.length).toBeGreaterThan(0);
        expect(preflights.every((l) => / 204 -$/.test(l))).toBe(true);
        // What the page's script can read of an answer from the other origin.
        const seen = await other.evaluate(
          async ({ url, token }) => {
            const call = async (authorization?: string) => {
              const response = await fetch(`${url}/audiohm.library.v1.LibraryService/GetLibraryStats`, {
                method: "POST",
                headers: {
                  "content-type": "application/grpc-web+proto",
                  "x-grpc-web": "1",
                  ...(authorization ? { authorization } : {}),
                },
                body: new Uint8Array(5),
              });
              await response.arrayBuffer();
              return {
                status: response.headers.get("grpc-status"),
                limit: response.headers.get("ratelimit-limit"),
                remaining: response.headers.get("ratelimit-remaining"),
                reset: response.headers.get("ratelimit-reset"),
              };
            };
            return { signedIn: await call(`Bearer ${token}`), anonymous: await call() };
          },
          { url: gateway.url, token: a.token(listener) },
        );
        expect(seen.signedIn.limit).toBe("100000");
        expect(Number(seen.signedIn.remaining)).toBeGreaterThan(0);
        expect(seen.signedIn.reset).not.toBeNull();
        // An error is a trailers-only answer: its status is in the headers. 16: UNAUTHENTICATED.
        expect(seen.anonymous.status).toBe("16");
      } finally {
        await other.close();
      }
    });

    test("refuses other origins: no CORS headers for them", async () => {
      logsOnFailure();
      const preflight = await httpsRequest(gateway.url, ca, "OPTIONS", "/audiohm.library.v1.LibraryService/GetLibraryStats", {
        origin: "https://evil.example",
        "access-control-request-method": "POST",
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers["access-control-allow-origin"]).toBeUndefined();
      const allowed = await httpsRequest(gateway.url, ca, "OPTIONS", "/audiohm.library.v1.LibraryService/GetLibraryStats", {
        origin: gateway.siteUrl ?? "",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent",
      });
      expect(allowed.headers["access-control-allow-origin"]).toBe(gateway.siteUrl);
      expect(allowed.headers["access-control-allow-methods"]).toBe("POST");
      expect(String(allowed.headers["access-control-allow-headers"])).toContain("authorization");
    });
  });

  describe("for gRPC clients", () => {
    test("buf curl reaches health, reflection and the API through the gateway over TLS", () => {
      logsOnFailure();
      const health = JSON.parse(bufCurl(["-d", '{"service":"audiohm.library.v1.LibraryService"}', `${gateway.url}/grpc.health.v1.Health/Check`]));
      expect(health).toEqual({ status: "SERVING" });
      // Reflection is a bidirectional stream: it works through grpc_pass.
      expect(bufCurl(["--list-services", gateway.url]).split("\n")).toEqual(
        expect.arrayContaining(["audiohm.library.v1.LibraryService", "grpc.health.v1.Health"]),
      );
      const listener = randomUUID();
      const trackId = randomUUID();
      const recorded = JSON.parse(
        bufCurl([
          "-H", `authorization: Bearer ${a.token(listener)}`,
          "-d", JSON.stringify({ trackId, playedForSeconds: 120, requestId: "buf-1" }),
          `${gateway.url}/audiohm.library.v1.LibraryService/RecordPlay`,
        ]),
      );
      expect(recorded.play.trackId).toBe(trackId);
      expect(recorded.play.userId).toBe(listener);
    });

    test("gRPC-web over HTTP/1.1 streams through the gateway too", async () => {
      logsOnFailure();
      const listener = randomUUID();
      await recordHistory(grpcClient(listener), 30);
      const token = a.token(listener);
      const web = createClient(
        LibraryService,
        createGrpcWebTransport({
          baseUrl: gateway.url,
          httpVersion: "1.1",
          nodeOptions: { ca },
          interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
        }),
      );
      const before = gateway.accessLog().length;
      const ids: string[] = [];
      for await (const entry of web.listHistory({})) ids.push(entry.play?.id ?? "");
      expect(ids.length).toBe(30);
      const logged = gateway.accessLog().slice(before);
      expect(logged.some((l) => l.startsWith("POST /audiohm.library.v1.LibraryService/ListHistory HTTP/1.1 application/grpc-web"))).toBe(true);
    });

    test("balances calls from one HTTP/2 connection across both replicas, call by call", async () => {
      logsOnFailure();
      const api = grpcClient(randomUUID());
      const before = [replicaCalls(a, "GetLibraryStats"), replicaCalls(b, "GetLibraryStats")];
      const served: string[] = [];
      for (let i = 0; i < 20; i++) {
        await api.getLibraryStats({}, { onHeader: (h) => served.push(upstreamOf(h)) });
      }
      const byReplica = (r: RunningService) => served.filter((s) => s === r.address).length;
      expect(byReplica(a) + byReplica(b)).toBe(20);
      expect(byReplica(a)).toBeGreaterThanOrEqual(5);
      expect(byReplica(b)).toBeGreaterThanOrEqual(5);
      // Each replica's own log shows the calls it served.
      await expect.poll(() => replicaCalls(a, "GetLibraryStats") - (before[0] ?? 0)).toBe(byReplica(a));
      await expect.poll(() => replicaCalls(b, "GetLibraryStats") - (before[1] ?? 0)).toBe(byReplica(b));
    });
  });

  describe("when a replica dies", () => {
    const listener = randomUUID();
    let api: Library;
    /** Every play's id, read in one uninterrupted listing. */
    let full: string[];

    beforeAll(async () => {
      api = grpcClient(listener);
      // Imported through the gateway: a client stream through grpc_pass.
      const start = Date.now() - LONG_HISTORY * 1000;
      async function* batches() {
        for (let first = 0; first < LONG_HISTORY; first += 1000) {
          yield {
            plays: Array.from({ length: 1000 }, (_, k) => ({
              trackId: TRACKS[(first + k) % TRACKS.length],
              playedForSeconds: 180,
              completed: true,
              // Many plays share a second, so the cursor must order within one.
              playedAt: timestampFromDate(new Date(start + Math.floor((first + k) / 4) * 4000)),
              requestId: `seed-${first + k}`,
            })),
          };
        }
      }
      const summary = await api.importHistory(batches());
      expect(summary.importedCount).toBe(BigInt(LONG_HISTORY));
      full = [];
      for await (const entry of api.listHistory({})) full.push(entry.play?.id ?? "");
    }, 600_000);

    test("a history listing resumes from its last cursor on the other replica: nothing skipped, nothing repeated", async () => {
      logsOnFailure();
      expect(full.length).toBe(LONG_HISTORY);
      expect(new Set(full).size).toBe(LONG_HISTORY);

      const received: string[] = [];
      let cursor = "";
      let serving = "";
      let failure: unknown;
      let killed: RunningService | undefined;
      try {
        const options: CallOptions = { onHeader: (h) => (serving = upstreamOf(h)) };
        for await (const entry of api.listHistory({}, options)) {
          received.push(entry.play?.id ?? "");
          cursor = entry.cursor;
          if (received.length === 60_000) {
            killed = serving === a.address ? a : serving === b.address ? b : undefined;
            if (!killed) throw new Error(`no replica named ${serving}`);
            await killed.kill();
          }
        }
      } catch (error) {
        failure = error;
      }
      // The stream broke off: the replica died under it, well before the end.
      expect(killed).toBeDefined();
      expect(failure).toBeInstanceOf(ConnectError);
      const firstPart = received.length;
      expect(firstPart).toBeLessThan(LONG_HISTORY);
      console.info(`listing broken off after ${firstPart} plays: ${String(failure)}`);

      // The client resumes after its last cursor; the gateway sends it to the survivor.
      let resumedOn = "";
      const resumed = await api.listHistory({ after: cursor }, { onHeader: (h) => (resumedOn = upstreamOf(h)) });
      for await (const entry of resumed) received.push(entry.play?.id ?? "");
      // nginx may have tried the dead replica first (refused: nothing sent, so it moves on).
      const survivor = killed === a ? b : a;
      expect(resumedOn.split(", ").pop()).toBe(survivor.address);
      expect(firstDifference(received, full)).toBe(-1);
      expect(received.length).toBe(full.length);
      await killed?.resume();
    }, 300_000);

    test("writers retrying RecordPlay with their request_ids while a replica is killed lose nothing and store nothing twice", async () => {
      logsOnFailure();
      const WRITERS = 16;
      const PLAYS = 100;
      let done = 0;
      let failedCalls = 0;
      let duplicates = 0;
      const codes = new Map<string, number>();
      let kill: Promise<void> | undefined;
      const victim = b;

      async function writer(w: number) {
        const listener = randomUUID();
        const api = grpcClient(listener);
        const ids = new Map<string, string>();
        for (let i = 0; i < PLAYS; i++) {
          const requestId = `writer-${w}-${i}`;
          for (let attempt = 1; ; attempt++) {
            try {
              const { play, duplicate } = await api.recordPlay(
                { trackId: TRACKS[i % TRACKS.length], playedForSeconds: 100 + i, requestId },
                { timeoutMs: 15_000 },
              );
              if (duplicate) duplicates += 1;
              ids.set(requestId, play?.id ?? "");
              break;
            } catch (error) {
              // What a player does: the same request_id again, after a short pause.
              failedCalls += 1;
              const code = ConnectError.from(error).code;
              codes.set(String(code), (codes.get(String(code)) ?? 0) + 1);
              if (attempt === 20) throw error;
              await new Promise((resolve) => setTimeout(resolve, 100));
            }
          }
          done += 1;
          // A third of the way, with every writer in the middle of its calls.
          if (done === Math.floor((WRITERS * PLAYS) / 3)) kill = victim.kill();
        }
        return { api, ids };
      }

      const writers = await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
      await kill;
      console.info(
        `writers: ${failedCalls} failed calls retried (codes ${JSON.stringify([...codes])}), ${duplicates} answered as duplicates`,
      );
      // The kill did catch calls in flight, and nginx did not pass them on to the other replica
      // once sent: each failed with the dead replica alone, as a 502 (UNAVAILABLE).
      expect(failedCalls).toBeGreaterThan(0);
      const failedInGateway = gateway.accessLog().filter((l) => l.includes("/RecordPlay ") && !/ 200 /.test(l));
      expect(failedInGateway.length).toBeGreaterThan(0);
      expect(failedInGateway.every((l) => l.endsWith(` 502 ${victim.address}`))).toBe(true);
      for (const { api, ids } of writers) {
        // Each play stored once: the listing holds exactly the plays the answers named.
        const listed: string[] = [];
        for await (const entry of api.listHistory({})) listed.push(entry.play?.id ?? "");
        expect(listed.length).toBe(PLAYS);
        expect(new Set(listed)).toEqual(new Set(ids.values()));
      }
      await victim.resume();
    }, 300_000);
  });
});

const TRACKS = Array.from({ length: 50 }, () => randomUUID());

/** The first index where the two lists differ (-1: none), without a 200,000-line diff. */
function firstDifference(actual: string[], expected: string[]): number {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) if (actual[i] !== expected[i]) return i;
  return -1;
}

/** One HTTPS request trusting `ca`; the status and headers. */
function httpsRequest(
  base: string,
  ca: Buffer,
  method: string,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, headers, ca }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}
