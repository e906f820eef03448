// The "My library" page in a real headless Chromium against the real service on a fresh
// database: what a listener sees, and that what they do on the page reaches the service.
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { createServer } from "vite";
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from "vitest";

import { createLibraryClient, type LibraryClient } from "../src/client.ts";
import { backends, buildService, RunningService, webDir } from "./service.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(webDir, "test-results");
const HOUR = 3600 * 1000;
// Streams (ListHistory calls) per minute per listener: low, so the page's rate-limit message
// can be reached by clicking.
const STREAMS_PER_MINUTE = 8;

const TRACKS = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()] as const;
const PLAYS = 120;
const XSS_NOTE = `that bassline <img src=x onerror="document.title='pwned'">`;

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

describe.each(backends())("My library page on $name", (backend) => {
  let service: RunningService;
  let api: LibraryClient;
  let context: BrowserContext;
  let page: Page;
  const listener = randomUUID();
  const dialogs: string[] = [];
  const pageErrors: string[] = [];
  // Includes anything the service's Content-Security-Policy blocks.
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    service = await RunningService.start(binary, backend, [
      "--rate-streams-per-minute",
      String(STREAMS_PER_MINUTE),
      "--shutdown-grace",
      "1",
    ]);
    api = createLibraryClient(service.url, service.token(listener));
    // 120 plays over the last ten days, newest first: track i % 6, every third one skipped early.
    const now = Date.now();
    const recorded = await api.recordPlays({
      plays: Array.from({ length: PLAYS }, (_, i) => ({
        trackId: TRACKS[i % TRACKS.length],
        playedForSeconds: 180 + i,
        completed: i % 3 !== 0,
        source: ["album", "playlist", "radio"][i % 3],
        playedAt: timestampFromDate(new Date(now - (i * 2 + 1) * HOUR)),
        requestId: `e2e-${i}`,
      })),
    });
    expect(recorded.recordedCount).toBe(PLAYS);
    await api.likeTrack({ trackId: TRACKS[1], notes: XSS_NOTE });
    await api.likeTrack({ trackId: TRACKS[2], notes: "sunday mornings" });

    context = await browser.newContext({ timezoneId: "Asia/Kathmandu", viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    page.on("pageerror", (error) => pageErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });
  });

  afterAll(async () => {
    await context?.close();
    await service?.stop();
  });

  const screenshotOnFailure = (name: string) =>
    onTestFailed(async () => {
      await page?.screenshot({ path: join(ARTIFACTS, `${backend.name}-${name}-failed.png`), fullPage: true });
      console.error(service.logs.slice(-20).join("\n"));
    });

  const noticeText = () => page.locator("#notice").innerText();
  const historyRows = () => page.locator("#history tr");
  const likedRows = () => page.locator("#likes li[data-track]");
  const heart = (trackId: string) => page.locator(`#history button[data-heart="${trackId}"]`).first();

  async function signIn(target: Page, token: string, pageUrl = service.url) {
    await target.goto(pageUrl);
    await target.getByLabel("Token").fill(token);
    await target.getByRole("button", { name: "Sign in" }).click();
  }

  test("signs in with a pasted token and shows the stats with the daily activity", async () => {
    screenshotOnFailure("stats");
    await signIn(page, service.token(listener));
    await page.locator("#library").waitFor({ state: "visible" });
    await expect.poll(() => page.locator("#account-sub").innerText()).toBe(listener);

    const cards = await page.locator("#stats-cards").innerText();
    expect(cards).toMatch(/Plays\s+120\b/i);
    expect(cards).toMatch(/Played to the end\s+80\b/i);
    expect(cards).toMatch(/Different tracks\s+6\b/i);
    expect(cards).toMatch(/Liked tracks\s+2\b/i);
    // 180 + 181 + ... + 299 seconds.
    expect(cards).toMatch(/Listening time\s+7 h 59 min/i);
    // Chromium names the zone by its ICU spelling, Asia/Katmandu; the service accepts both.
    expect(await page.locator("#stats-zone").innerText()).toMatch(/^Days in Asia\/Kath?mandu$/);

    const bars = page.locator("#activity-chart rect");
    expect(await bars.count()).toBe(30);
    const perDay = (await bars.evaluateAll((rects) => rects.map((r) => Number(r.getAttribute("data-plays")))));
    expect(perDay.reduce((a, b) => a + b, 0)).toBe(PLAYS);
    const label = await page.locator("#activity-chart svg").getAttribute("aria-label");
    expect(label).toMatch(/^120 plays on (10|11) of the last 30 days; busiest/);
    const tallest = await bars.evaluateAll((rects) => Math.max(...rects.map((r) => Number(r.getAttribute("height")))));
    expect(tallest).toBeGreaterThan(100);

    expect(await page.locator("#top-tracks li").count()).toBe(5);
    expect(await page.locator("#sources").innerText()).toMatch(/album\s+40 plays/);
  });

  test("shows the liked tracks with their notes as text", async () => {
    screenshotOnFailure("likes");
    await expect.poll(() => likedRows().count()).toBe(2);
    expect(await page.locator("#likes-total").innerText()).toBe("2 liked");
    expect(await page.getByLabel(`Notes for ${TRACKS[1]}`).inputValue()).toBe(XSS_NOTE);
    expect(await page.getByLabel(`Notes for ${TRACKS[2]}`).inputValue()).toBe("sunday mornings");
    // The note is shown, never run.
    expect(await page.title()).toBe("My library · audiOhm");
    expect(await page.locator("img").count()).toBe(0);
  });

  test("streams the history newest first and loads more from the last cursor", async () => {
    screenshotOnFailure("history");
    await expect.poll(() => page.locator("#history-status").innerText()).toBe("50 plays shown");
    expect(await historyRows().count()).toBe(50);
    const more = page.getByRole("button", { name: "Load more" });
    await more.click();
    await expect.poll(() => page.locator("#history-status").innerText()).toBe("100 plays shown");
    await more.click();
    await expect.poll(() => page.locator("#history-status").innerText()).toBe(
      "120 plays shown · that is all of your history",
    );
    expect(await more.isVisible()).toBe(false);

    // Exactly the service's history, in its order, with no play twice or missing.
    const shown = await historyRows().evaluateAll((rows) => rows.map((r) => r.getAttribute("data-play")));
    const listed: string[] = [];
    for await (const entry of api.listHistory({})) listed.push(entry.play?.id ?? "");
    expect(shown).toEqual(listed);
    const firstRow = await historyRows().first().innerText();
    expect(firstRow).toContain(TRACKS[0]);
    expect(firstRow).toContain("3 min");
    // Hearts show which tracks are liked, from CheckLikedTracks.
    await expect.poll(() => heart(TRACKS[1]).getAttribute("aria-pressed")).toBe("true");
    expect(await heart(TRACKS[3]).getAttribute("aria-pressed")).toBe("false");
  });

  test("a like toggled on the page is what CheckLikedTracks answers", async () => {
    screenshotOnFailure("toggle");
    await heart(TRACKS[3]).click();
    await expect.poll(() => heart(TRACKS[3]).getAttribute("aria-pressed")).toBe("true");
    expect((await api.checkLikedTracks({ trackIds: [TRACKS[3]] })).liked).toEqual([true]);
    // Every row of that track, the liked list and the stats follow.
    const hearts = page.locator(`#history button[data-heart="${TRACKS[3]}"]`);
    expect(await hearts.evaluateAll((all) => all.every((b) => b.getAttribute("aria-pressed") === "true"))).toBe(true);
    await expect.poll(() => likedRows().count()).toBe(3);
    await expect.poll(() => page.locator("#stats-cards").innerText()).toMatch(/Liked tracks\s+3\b/i);

    // And back, from the liked list this time.
    await page.locator("#likes").getByRole("button", { name: `Unlike ${TRACKS[3]}` }).click();
    await expect.poll(() => heart(TRACKS[3]).getAttribute("aria-pressed")).toBe("false");
    expect((await api.checkLikedTracks({ trackIds: [TRACKS[3]] })).liked).toEqual([false]);
    await expect.poll(() => likedRows().count()).toBe(2);
  });

  test("notes edited on the page are saved", async () => {
    screenshotOnFailure("notes");
    const notes = page.getByLabel(`Notes for ${TRACKS[2]}`);
    await notes.fill("rainy days");
    await page.locator(`#likes li[data-track="${TRACKS[2]}"]`).getByRole("button", { name: "Save notes" }).click();
    await expect.poll(noticeText).toBe("Notes saved.");
    const { likedTracks } = await api.listLikedTracks({});
    expect(likedTracks.find((l) => l.trackId === TRACKS[2])?.notes).toBe("rainy days");
  });

  test("a track liked by ID from the form appears, and bad input is explained", async () => {
    screenshotOnFailure("like-form");
    await page.getByLabel("Track ID").fill("not-a-track");
    await page.getByRole("button", { name: "Like", exact: true }).click();
    await expect.poll(noticeText).toBe("Please check your input: Track ID must be a UUID.");
    expect((await api.listLikedTracks({})).totalSize).toBe(2n);

    await page.getByLabel("Track ID").fill(TRACKS[4].toUpperCase());
    await page.getByLabel("Notes (optional)").fill("found on the radio");
    await page.getByRole("button", { name: "Like", exact: true }).click();
    await expect.poll(noticeText).toBe("Track liked.");
    await expect.poll(() => page.getByLabel(`Notes for ${TRACKS[4]}`).inputValue()).toBe("found on the radio");
    expect((await api.checkLikedTracks({ trackIds: [TRACKS[4]] })).liked).toEqual([true]);

    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(ARTIFACTS, `library-${backend.name}.png`) });
    await page.screenshot({ path: join(ARTIFACTS, `library-${backend.name}-full.png`), fullPage: true });
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });

  test("the page fits a phone's width; the history table scrolls inside it", async () => {
    screenshotOnFailure("phone");
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 390, height: 844 });
    await signIn(phone, service.token(listener));
    await expect.poll(() => phone.locator("#history-status").innerText()).toBe("50 plays shown");
    expect(await phone.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await phone.screenshot({ path: join(ARTIFACTS, `library-${backend.name}-phone.png`), fullPage: true });
    await phone.close();
  });

  test("the same page works from Vite's dev server, which proxies to the service", async () => {
    screenshotOnFailure("dev-server");
    // As `npm run dev` starts it, with LIBRARY_URL naming this service instead of :50051.
    process.env.LIBRARY_URL = service.url;
    const dev = await createServer({ root: webDir, logLevel: "silent", server: { port: 0, host: "127.0.0.1" } });
    try {
      await dev.listen();
      const devUrl = dev.resolvedUrls?.local[0];
      expect(devUrl).toBeDefined();
      const other = await context.newPage();
      await signIn(other, service.token(listener), devUrl);
      await expect.poll(() => other.locator("#history-status").innerText()).toBe("50 plays shown");
      expect(await other.locator("#stats-cards").innerText()).toMatch(/Plays\s+120\b/i);
      await other.close();
    } finally {
      await dev.close();
      delete process.env.LIBRARY_URL;
    }
  });

  test("a reload keeps the listener signed in; signing out forgets the library", async () => {
    screenshotOnFailure("sign-out");
    await page.reload();
    await expect.poll(() => page.locator("#history-status").innerText()).toBe("50 plays shown");
    expect(await page.locator("#account").innerText()).toMatch(/until \d\d:\d\d/);

    await page.getByRole("button", { name: "Sign out" }).click();
    expect(await page.locator("#sign-in").isVisible()).toBe(true);
    expect(await page.locator("#library").isVisible()).toBe(false);
    expect(await page.getByLabel("Token").inputValue()).toBe("");
    expect(await historyRows().count()).toBe(0);
    expect(await likedRows().count()).toBe(0);
    expect(await page.locator("#stats-cards").innerText()).toBe("");
    await page.reload();
    expect(await page.locator("#sign-in").isVisible()).toBe(true);
    expect(await page.locator("#library").isVisible()).toBe(false);
  });

  test("a listener over the stream quota is told when to try again", async () => {
    screenshotOnFailure("rate-limit");
    const other = await context.newPage();
    await signIn(other, service.token(randomUUID()));
    const status = other.locator("#history-status");
    await expect.poll(() => status.innerText()).toBe("No plays yet.");
    expect(await other.locator("#likes").innerText()).toBe("No liked tracks yet.");
    expect(await other.locator("#activity-chart").innerText()).toContain("No plays in the last 30 days");
    // Signing in used one stream; reload until the quota is spent (a few more clicks are allowed
    // for what refills meanwhile on a slow machine).
    const notice = other.locator("#notice");
    let clicks = 0;
    while ((await notice.innerText()) === "" && clicks < STREAMS_PER_MINUTE + 3) {
      await other.getByRole("button", { name: "Reload" }).click();
      clicks += 1;
      await expect.poll(() => status.innerText()).not.toBe("Loading…");
    }
    expect(clicks).toBeGreaterThanOrEqual(STREAMS_PER_MINUTE);
    expect(await notice.innerText()).toMatch(/^You are doing that too often\. Please try again in \d+ seconds?\.$/);
    // Still signed in: a quota is not a reason to sign out.
    expect(await other.locator("#library").isVisible()).toBe(true);
    await other.close();
  });

  test("an expired token is explained and the listener stays on the sign-in form", async () => {
    screenshotOnFailure("expired");
    const other = await context.newPage();
    const token = service.token(randomUUID(), 1);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    await signIn(other, token);
    await expect
      .poll(() => other.locator("#notice").innerText())
      .toBe("Your sign-in has expired. Paste a fresh token to continue.");
    expect(await other.locator("#sign-in").isVisible()).toBe(true);
    expect(await other.locator("#library").isVisible()).toBe(false);

    await signIn(other, "not a token");
    await expect.poll(() => other.locator("#notice").innerText()).toMatch(/does not look like a token/);
    await other.close();
  });
});
