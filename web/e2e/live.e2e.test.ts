// The page is live: what another client does (plays, likes, deletes, a device playing) shows on
// the page within a second, without a reload, and the page catches up after its server restarts.
// On PostgreSQL the page talks to replica A and the changes go through replica B on the same
// database; on SQLite one process does both.
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from "vitest";

import { createLibraryClient, type LibraryClient } from "../src/client.ts";
import { LibraryService, PlaybackState } from "../src/gen/audiohm/library/v1/library_pb.ts";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.ts";
import { backends, buildService, RunningService, webDir } from "./service.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(webDir, "test-results");
/** What "live" means here: on the page within a second of the call's answer. */
const LIVE = { timeout: 1000, interval: 25 };
const HOUR = 3600 * 1000;

let binary: string;
let browser: Browser;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  binary = buildService();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
  });
});

afterAll(async () => {
  await browser?.close();
});

describe.each(backends())("The live page on $name", (backend) => {
  const twoReplicas = backend.postgresUrl !== undefined;
  const listener = randomUUID();
  const tracks = [randomUUID(), randomUUID(), randomUUID()] as const;
  const fresh = randomUUID();
  /** Replica A serves the page; changes go through B (the same process on SQLite). */
  let a: RunningService;
  let b: RunningService;
  let other: LibraryClient;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];
  const consoleErrors: string[] = [];
  let watches = 0;
  let histories = 0;

  beforeAll(async () => {
    a = await RunningService.start(binary, backend, ["--shutdown-grace", "1"]);
    b = twoReplicas ? await a.replica() : a;
    other = createLibraryClient(b.url, b.token(listener));
    const now = Date.now();
    await other.recordPlays({
      plays: tracks.map((trackId, i) => ({
        trackId,
        playedForSeconds: 200,
        completed: true,
        source: "album",
        playedAt: timestampFromDate(new Date(now - (i + 1) * HOUR)),
      })),
    });
    await other.likeTrack({ trackId: tracks[0] });

    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
    page.on("request", (request) => {
      if (request.url().endsWith("/WatchLibrary")) watches += 1;
      if (request.url().endsWith("/ListHistory")) histories += 1;
    });
  });

  afterAll(async () => {
    await context?.close();
    if (b !== a) await b?.stop();
    await a?.stop();
  });

  const screenshotOnFailure = (name: string) =>
    onTestFailed(async () => {
      await page?.screenshot({ path: join(ARTIFACTS, `live-${backend.name}-${name}-failed.png`), fullPage: true });
      console.error(`replica A:\n${a.logs.slice(-20).join("\n")}`);
      if (b !== a) console.error(`replica B:\n${b.logs.slice(-20).join("\n")}`);
    });

  const status = () => page.locator("#history-status").innerText();
  const link = () => page.locator("#live").getAttribute("data-state");
  const rowIds = () => page.locator("#history tr").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-play")));
  const heart = (trackId: string) => page.locator(`#history button[data-heart="${trackId}"]`).first();
  const statCard = (label: string) =>
    page.locator("#stats-cards div").filter({ has: page.locator("dt", { hasText: label }) }).locator("dd").innerText();
  const card = (device: string) => page.locator(`#now-playing li[data-device="${device}"]`);

  test("signs in, opens one live stream and shows that nothing is playing", async () => {
    screenshotOnFailure("sign-in");
    await page.goto(a.url);
    await page.getByLabel("Token").fill(a.token(listener));
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(status).toBe("3 plays shown · that is all of your history");
    await expect.poll(link).toBe("live");
    expect(await page.locator("#live").innerText()).toBe("Live");
    expect(await page.locator("#now-playing").innerText()).toBe("Nothing is playing on your devices.");
    await expect.poll(() => heart(tracks[0]).getAttribute("aria-pressed")).toBe("true");
    expect(watches).toBe(1);
    // Marks this document: a reload would lose it.
    await page.evaluate(() => document.body.setAttribute("data-unreloaded", ""));
  });

  test("a play recorded elsewhere appears at the top of the history, and the stats follow", async () => {
    screenshotOnFailure("play");
    const { play } = await other.recordPlay({ trackId: fresh, playedForSeconds: 95, source: "radio" });
    await expect.poll(async () => (await rowIds())[0], LIVE).toBe(play?.id);
    await expect.poll(() => statCard("Plays"), LIVE).toBe("4");
    expect(await status()).toBe("4 plays shown · that is all of your history");
    const row = await page.locator("#history tr").first().innerText();
    expect(row).toContain(fresh);
    expect(row).toContain("radio");
    // Its play count, from GetTrackPlayCounts.
    await expect.poll(() => page.locator(`#history [data-play-count="${fresh}"]`).innerText()).toMatch(/^[01] plays?$/);
  });

  test("a like elsewhere turns the hearts on and lists the track; an unlike turns them off", async () => {
    screenshotOnFailure("likes");
    await other.likeTrack({ trackId: fresh, notes: "from the kitchen" });
    await expect.poll(() => heart(fresh).getAttribute("aria-pressed"), LIVE).toBe("true");
    await expect.poll(() => page.locator(`#likes li[data-track="${fresh}"]`).count(), LIVE).toBe(1);
    expect(await page.getByLabel(`Notes for ${fresh}`).inputValue()).toBe("from the kitchen");
    await expect.poll(() => statCard("Liked tracks")).toBe("2");

    // Notes changed elsewhere change in place.
    await other.updateLikedTrack({ trackId: fresh, notes: "kitchen radio" });
    await expect.poll(() => page.getByLabel(`Notes for ${fresh}`).inputValue(), LIVE).toBe("kitchen radio");

    await other.unlikeTrack({ trackId: fresh });
    await expect.poll(() => heart(fresh).getAttribute("aria-pressed"), LIVE).toBe("false");
    await expect.poll(() => page.locator(`#likes li[data-track="${fresh}"]`).count(), LIVE).toBe(0);
    await expect.poll(() => statCard("Liked tracks")).toBe("1");
  });

  test("a play deleted elsewhere leaves the history", async () => {
    screenshotOnFailure("delete");
    const [newest] = await rowIds();
    await other.deletePlay({ playId: newest ?? "" });
    await expect.poll(async () => (await rowIds()).includes(newest ?? ""), LIVE).toBe(false);
    expect(await status()).toBe("3 plays shown · that is all of your history");
    await expect.poll(() => statCard("Plays")).toBe("3");
  });

  test("a device reporting playback shows in now playing, advancing, and its end records the play", async () => {
    screenshotOnFailure("now-playing");
    const report = (device: string, playbackId: string, trackId: string, state: PlaybackState, position: number) =>
      other.reportPlayback({
        deviceId: device,
        playbackId,
        trackId,
        state,
        positionSeconds: position,
        trackDurationSeconds: 240,
        source: "playlist",
      });
    await report("kitchen-speaker", "pb-kitchen-1", tracks[1], PlaybackState.PLAYING, 30);
    await expect.poll(() => card("kitchen-speaker").getAttribute("data-state"), LIVE).toBe("playing");
    expect(await card("kitchen-speaker").innerText()).toContain(tracks[1]);
    const first = Number(await card("kitchen-speaker").getAttribute("data-position"));
    expect(first).toBeGreaterThanOrEqual(30);
    expect(first).toBeLessThan(34);
    // The position moves on by itself while playing.
    await expect.poll(async () => Number(await card("kitchen-speaker").getAttribute("data-position"))).toBeGreaterThanOrEqual(first + 2);
    expect(await card("kitchen-speaker").locator("[data-time]").innerText()).toMatch(/^0:3\d \/ 4:00$/);

    // A second device, paused.
    await report("phone", "pb-phone-1", tracks[2], PlaybackState.PAUSED, 75);
    await expect.poll(() => card("phone").getAttribute("data-state"), LIVE).toBe("paused");
    expect(await card("phone").locator("[data-time]").innerText()).toBe("1:15 / 4:00");
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(ARTIFACTS, `live-${backend.name}-now-playing.png`) });
    const section = page.locator("section[aria-labelledby=now-playing-heading]");
    await section.screenshot({ path: join(ARTIFACTS, `live-${backend.name}-now-playing-card.png`) });
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, `live-${backend.name}-now-playing-phone.png`) });
    await page.setViewportSize({ width: 1280, height: 900 });
    // Reading it again gives the same: the service's GetNowPlaying.
    const { playbacks } = await other.getNowPlaying({});
    expect(playbacks.map((p) => [p.deviceId, p.state]).sort()).toEqual([
      ["kitchen-speaker", PlaybackState.PLAYING],
      ["phone", PlaybackState.PAUSED],
    ]);

    // Pausing stops the clock.
    await report("kitchen-speaker", "pb-kitchen-1", tracks[1], PlaybackState.PAUSED, 100);
    await expect.poll(() => card("kitchen-speaker").getAttribute("data-state"), LIVE).toBe("paused");
    expect(await card("kitchen-speaker").locator("[data-time]").innerText()).toBe("1:40 / 4:00");

    // Stopped: the card goes, and the playback is recorded as a play, which appears.
    const stopped = await report("kitchen-speaker", "pb-kitchen-1", tracks[1], PlaybackState.STOPPED, 120);
    const recorded = stopped.recordedPlay?.id;
    expect(recorded).toBeDefined();
    await expect.poll(() => card("kitchen-speaker").count(), LIVE).toBe(0);
    await expect.poll(async () => (await rowIds())[0], LIVE).toBe(recorded);
    await expect.poll(() => statCard("Plays"), LIVE).toBe("4");
    await report("phone", "pb-phone-1", tracks[2], PlaybackState.STOPPED, 80);
    await expect.poll(() => page.locator("#now-playing").innerText(), LIVE).toBe("Nothing is playing on your devices.");
    await expect.poll(() => status()).toBe("5 plays shown · that is all of your history");
  });

  test("after its server restarts the page reconnects and catches up, without a reload", async () => {
    screenshotOnFailure("restart");
    const historiesBefore = histories;
    await a.halt();
    await expect.poll(link, { timeout: 5000 }).toBe("reconnecting");
    expect(await page.locator("#live").innerText()).toBe("Reconnecting…");
    let missed: string | undefined;
    if (twoReplicas) {
      // Made while A is down: A must replay it from the page's cursor.
      missed = (await other.recordPlay({ trackId: fresh, playedForSeconds: 60, source: "search" })).play?.id;
      await other.likeTrack({ trackId: tracks[2] });
    }
    await page.screenshot({ path: join(ARTIFACTS, `live-${backend.name}-reconnecting.png`) });
    await a.resume();
    if (!twoReplicas) {
      // One process: the change comes right after it is back.
      missed = (await other.recordPlay({ trackId: fresh, playedForSeconds: 60, source: "search" })).play?.id;
      await other.likeTrack({ trackId: tracks[2] });
    }
    // The backoff is at most 5 s.
    await expect.poll(link, { timeout: 8000 }).toBe("live");
    await expect.poll(async () => (await rowIds())[0], { timeout: 8000 }).toBe(missed);
    await expect.poll(() => heart(tracks[2]).getAttribute("aria-pressed")).toBe("true");
    await expect.poll(() => statCard("Plays")).toBe("6");
    expect(await status()).toBe("6 plays shown · that is all of your history");
    expect(await page.evaluate(() => document.body.hasAttribute("data-unreloaded"))).toBe(true);
    // A refresh that could not reach the service meanwhile is not left complaining.
    await expect.poll(() => page.locator("#notice").isVisible()).toBe(false);
    expect(watches).toBeGreaterThan(1);
    // Caught up from its cursor: the history was not read again.
    expect(histories).toBe(historiesBefore);

    // And it is live again.
    const { play } = await other.recordPlay({ trackId: tracks[1], playedForSeconds: 30, source: "album" });
    await expect.poll(async () => (await rowIds())[0], LIVE).toBe(play?.id);
    expect(pageErrors).toEqual([]);
    // Chromium logs each refused reconnection attempt while the server was down; nothing else.
    expect(consoleErrors.filter((e) => !/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET/.test(e))).toEqual([]);
  });

  test("a history cleared elsewhere is read again", async () => {
    screenshotOnFailure("clear");
    const freshRows = () => page.locator(`#history tr[data-track="${fresh}"]`).count();
    expect(await freshRows()).toBe(1);
    const { deletedCount } = await other.clearHistory({ trackId: fresh });
    expect(deletedCount).toBe(1n);
    await expect.poll(freshRows, LIVE).toBe(0);
    await expect.poll(status).toBe("6 plays shown · that is all of your history");
    await expect.poll(() => statCard("Plays")).toBe("6");
  });

  test("when the events it missed are no longer kept, the page reads everything again", async () => {
    screenshotOnFailure("expired");
    // Events are kept for at least 10 minutes: the service's refusal of an older cursor is
    // played here, once, to the page's next watch.
    let refused = 0;
    await page.route("**/WatchLibrary", async (route) => {
      if (refused > 0) return route.fallback();
      refused += 1;
      const headers = new Headers({ "content-type": "application/grpc-web+proto" });
      setTrailerStatus(
        headers,
        new ConnectError("the events after this cursor are no longer kept", Code.FailedPrecondition, undefined, [
          { desc: ErrorInfoSchema, value: { reason: "EVENTS_EXPIRED", domain: "library.audiohm" } },
        ]),
      );
      await route.fulfill({ status: 200, headers: Object.fromEntries(headers), body: "" });
    });
    const historiesBefore = histories;
    await a.halt();
    await expect.poll(() => refused, { timeout: 8000 }).toBe(1);
    if (twoReplicas) await other.likeTrack({ trackId: tracks[1] });
    await a.resume();
    if (!twoReplicas) await other.likeTrack({ trackId: tracks[1] });
    await expect.poll(link, { timeout: 8000 }).toBe("live");
    // Read again, not replayed: the history stream ran once more, and the like shows.
    await expect.poll(() => histories, { timeout: 5000 }).toBe(historiesBefore + 1);
    await expect.poll(() => heart(tracks[1]).getAttribute("aria-pressed"), { timeout: 5000 }).toBe("true");
    await expect.poll(() => page.locator(`#likes li[data-track="${tracks[1]}"]`).count()).toBe(1);
    expect(await status()).toBe("6 plays shown · that is all of your history");
    expect(await page.evaluate(() => document.body.hasAttribute("data-unreloaded"))).toBe(true);
    await page.unroute("**/WatchLibrary");
    // Live again, from now on.
    const { play } = await other.recordPlay({ trackId: tracks[2], playedForSeconds: 30 });
    await expect.poll(async () => (await rowIds())[0], LIVE).toBe(play?.id);
  });

  test("plays imported elsewhere show, the history read again at most every 2 s", async () => {
    screenshotOnFailure("import");
    // ImportHistory streams from the client, which gRPC-web cannot: plain gRPC over HTTP/2.
    const token = b.token(listener);
    const grpc = createClient(
      LibraryService,
      createGrpcTransport({
        baseUrl: b.url,
        interceptors: [(next) => (request) => (request.header.set("authorization", `Bearer ${token}`), next(request))],
      }),
    );
    const before = await rowIds();
    const historiesBefore = histories;
    const now = Date.now();
    async function* batches() {
      for (let i = 0; i < 3; i++) {
        yield {
          plays: [
            {
              trackId: tracks[0],
              playedForSeconds: 150,
              playedAt: timestampFromDate(new Date(now - (10 + i) * HOUR)),
              requestId: `import-${i}`,
            },
          ],
        };
      }
    }
    await grpc.importHistory(batches());
    await expect.poll(async () => (await rowIds()).length, { timeout: 4000 }).toBe(before.length + 3);
    await expect.poll(status).toBe(`${before.length + 3} plays shown · that is all of your history`);
    // Three batches, three events: read once at once and at most once more.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect(histories - historiesBefore).toBeGreaterThanOrEqual(1);
    expect(histories - historiesBefore).toBeLessThanOrEqual(2);
    expect((await rowIds()).length).toBe(before.length + 3);
  });

  test("signing out closes the stream and clears now playing", async () => {
    screenshotOnFailure("sign-out");
    await other.reportPlayback({
      deviceId: "car",
      playbackId: "pb-car-1",
      trackId: tracks[0],
      state: PlaybackState.PLAYING,
      positionSeconds: 5,
    });
    await expect.poll(() => card("car").count(), LIVE).toBe(1);
    await page.getByRole("button", { name: "Sign out" }).click();
    expect(await page.locator("#live").isVisible()).toBe(false);
    expect(await page.locator("#now-playing").innerText()).toBe("");
    const before = watches;
    await other.recordPlay({ trackId: tracks[0], playedForSeconds: 30 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(watches).toBe(before);
    expect(await page.locator("#history tr").count()).toBe(0);
  });
});
