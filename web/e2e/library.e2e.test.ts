// The "My library" page in a real headless Chromium against the real service on a fresh
// database: what a listener sees, and that what they do on the page reaches the service.
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { createServer } from "vite";
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from "vitest";

import { createLibraryClient, type LibraryClient } from "../src/client.ts";
import { ActivityBucket, type TopTrack, TopTracksPeriod } from "../src/gen/audiohm/library/v1/library_pb.ts";
import { hoursOf, rankingOf, seedVeteran, type Veteran, ZONE } from "./seed.ts";
import { backends, buildService, RunningService, webDir } from "./service.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const ARTIFACTS = join(webDir, "test-results");
const HOUR = 3600 * 1000;
// Streams (ListHistory and WatchLibrary calls) per minute per listener: low, so the page's
// rate-limit message can be reached by clicking, and enough for the first listener's pages (two
// streams each sign-in or reload, one each "Load more").
const STREAMS_PER_MINUTE = 12;

const TRACKS = [randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID(), randomUUID()] as const;
const PLAYS = 120;
const XSS_NOTE = `that bassline <img src=x onerror="document.title='pwned'">`;

/** A count as the page words it. */
const playsText = (n: bigint) => `${n} ${n === 1n ? "play" : "plays"}`;

/** What the page reads from a play-count badge. */
async function badges(page: Page, scope: string) {
  return page.locator(`${scope} [data-play-count]`).evaluateAll((all) =>
    all.map((b) => ({
      trackId: b.getAttribute("data-play-count"),
      text: b.textContent,
      counted: b.getAttribute("data-counted"),
      plays: b.getAttribute("data-plays"),
    })),
  );
}

/** The badges the page should show for `counts`, one per badge read. */
function expectedBadges(
  shown: { trackId: string | null }[],
  counts: { trackId: string; plays: bigint; countedPlays: bigint }[],
) {
  return shown.map(({ trackId }) => {
    const c = counts.find((t) => t.trackId === trackId);
    return { trackId, text: c ? playsText(c.countedPlays) : "?", counted: String(c?.countedPlays), plays: String(c?.plays) };
  });
}

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
  // The page's calls, by method, to see that each page of rows asks for its play counts once.
  const calls = new Map<string, number>();
  const callsOf = (method: string) => calls.get(method) ?? 0;
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
    page.on("request", (request) => {
      const method = new URL(request.url()).pathname.split("/").pop() ?? "";
      calls.set(method, callsOf(method) + 1);
    });
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
    // Each with its play count, as GetTrackPlayCounts answers it.
    await expect.poll(async () => (await badges(page, "#likes")).every((b) => b.counted !== null)).toBe(true);
    const { tracks } = await api.getTrackPlayCounts({ trackIds: [TRACKS[1], TRACKS[2]] });
    const shown = await badges(page, "#likes");
    expect(shown.map((b) => b.trackId)).toEqual([TRACKS[2], TRACKS[1]]);
    expect(shown).toEqual(expectedBadges(shown, tracks));
    // The note is shown, never run.
    expect(await page.title()).toBe("My library · audiOhm");
    expect(await page.locator("img").count()).toBe(0);
  });

  test("streams the history newest first and loads more from the last cursor", async () => {
    screenshotOnFailure("history");
    // Every badge filled: the page's GetTrackPlayCounts call has been answered.
    const counted = async () => (await badges(page, "#history")).every((b) => b.counted !== null);
    await expect.poll(() => page.locator("#history-status").innerText()).toBe("50 plays shown");
    await expect.poll(counted).toBe(true);
    expect(await historyRows().count()).toBe(50);
    const before = callsOf("GetTrackPlayCounts");
    const more = page.getByRole("button", { name: "Load more" });
    await more.click();
    await expect.poll(() => page.locator("#history-status").innerText()).toBe("100 plays shown");
    await expect.poll(counted).toBe(true);
    await expect.poll(() => callsOf("GetTrackPlayCounts")).toBe(before + 1);
    await more.click();
    await expect.poll(() => page.locator("#history-status").innerText()).toBe(
      "120 plays shown · that is all of your history",
    );
    await expect.poll(counted).toBe(true);
    expect(await more.isVisible()).toBe(false);
    // One call per page of rows, and it also answers the hearts.
    expect(callsOf("GetTrackPlayCounts")).toBe(before + 2);
    expect(callsOf("CheckLikedTracks")).toBe(0);

    // Each row's play count is GetTrackPlayCounts' answer: of 20 plays of each track, those of
    // tracks 0 and 3 stopped early, and count from 240 s on (10 of them).
    const { tracks } = await api.getTrackPlayCounts({ trackIds: [...TRACKS] });
    expect(tracks.map((t) => [t.trackId, t.plays, t.countedPlays, t.skippedPlays])).toEqual(
      TRACKS.map((id, t) => [id, 20n, t % 3 === 0 ? 10n : 20n, t % 3 === 0 ? 10n : 0n]),
    );
    const shownCounts = await badges(page, "#history");
    expect(shownCounts).toHaveLength(PLAYS);
    expect(shownCounts).toEqual(expectedBadges(shownCounts, tracks));

    // Exactly the service's history, in its order, with no play twice or missing.
    const shown = await historyRows().evaluateAll((rows) => rows.map((r) => r.getAttribute("data-play")));
    const listed: string[] = [];
    for await (const entry of api.listHistory({})) listed.push(entry.play?.id ?? "");
    expect(shown).toEqual(listed);
    const firstRow = await historyRows().first().innerText();
    expect(firstRow).toContain(TRACKS[0]);
    expect(firstRow).toContain("3 min");
    // Hearts show which tracks are liked, from the same GetTrackPlayCounts calls.
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
    for (const section of ["stats", "top"]) {
      await phone
        .locator(`section[aria-labelledby=${section}-heading]`)
        .screenshot({ path: join(ARTIFACTS, `library-${backend.name}-phone-${section}.png`) });
    }
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
    // Signing in used two streams (the history and the live one); reload until the quota is spent
    // (a few more clicks are allowed for what refills meanwhile on a slow machine).
    const notice = other.locator("#notice");
    let clicks = 0;
    while ((await notice.innerText()) === "" && clicks < STREAMS_PER_MINUTE + 3) {
      await other.getByRole("button", { name: "Reload" }).click();
      clicks += 1;
      await expect.poll(() => status.innerText()).not.toBe("Loading…");
    }
    expect(clicks).toBeGreaterThanOrEqual(STREAMS_PER_MINUTE - 1);
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

  describe("a listener with months of history", () => {
    const veteranId = randomUUID();
    let vetApi: LibraryClient;
    let veteran: Veteran;
    let vet: Page;
    const vetErrors: string[] = [];

    beforeAll(async () => {
      vetApi = createLibraryClient(service.url, service.token(veteranId));
      veteran = await seedVeteran(vetApi);
      await vetApi.likeTrack({ trackId: veteran.tracks.c, notes: "on repeat" });
      await vetApi.likeTrack({ trackId: veteran.tracks.e, notes: "new this week" });
      vet = await context.newPage();
      vet.on("pageerror", (error) => vetErrors.push(error.message));
      vet.on("console", (message) => {
        if (message.type() === "error") vetErrors.push(message.text());
      });
      await signIn(vet, service.token(veteranId));
      await vet.locator("#library").waitFor({ state: "visible" });
    });

    afterAll(async () => {
      await vet?.close();
    });

    const shot = (name: string) => join(ARTIFACTS, `${backend.name}-${name}.png`);

    test("the heatmap and the streaks are GetLibraryStats' answer in Asia/Kathmandu", async () => {
      screenshotOnFailure("heatmap");
      const stats = await vetApi.getLibraryStats({ timeZone: ZONE });
      // 7 plays months back, 16 last week, 25 this week; of them 5, 14 and 21 count.
      expect([stats.totalPlays, stats.countedPlays, stats.skippedPlays]).toEqual([48n, 40n, 8n]);
      expect(stats.hourlyActivity).toHaveLength(168);
      expect(stats.hourlyActivity.reduce((sum, c) => sum + c.plays, 0n)).toBe(48n);
      // Each cell as the plays' hours in Kathmandu (5:45 ahead of UTC) make it.
      const hours = hoursOf(veteran.plays);
      for (const c of stats.hourlyActivity) {
        expect([c.weekday, c.hour, c.plays, c.countedPlays]).toEqual([
          c.weekday,
          c.hour,
          ...(hours.get(`${c.weekday}:${c.hour}`) ?? [0, 0]).map(BigInt),
        ]);
      }

      const cells = vet.locator("#heatmap [data-weekday]");
      await expect.poll(() => cells.count()).toBe(168);
      const shown = await cells.evaluateAll((all) =>
        all.map((c) => ({
          weekday: Number(c.getAttribute("data-weekday")),
          hour: Number(c.getAttribute("data-hour")),
          plays: c.getAttribute("data-plays"),
          counted: c.getAttribute("data-counted"),
          label: c.getAttribute("aria-label"),
        })),
      );
      const byCell = (a: { weekday: number; hour: number }, b: { weekday: number; hour: number }) =>
        a.weekday - b.weekday || a.hour - b.hour;
      expect(shown.map(({ label: _, ...cell }) => cell).sort(byCell)).toEqual(
        stats.hourlyActivity
          .map((c) => ({ weekday: c.weekday, hour: c.hour, plays: String(c.plays), counted: String(c.countedPlays) }))
          .sort(byCell),
      );
      // Monday's row comes first, and each cell says its count.
      expect(shown[0]).toMatchObject({ weekday: 1, hour: 0 });
      for (const cell of shown) {
        expect(cell.label).toMatch(new RegExp(`:00: ${cell.plays} plays?, ${cell.counted} that count$`));
      }

      // One run from last week's Monday to the last counted play, the longest too.
      const days = (Date.parse(veteran.streak.last) - Date.parse(veteran.streak.first)) / 86_400_000 + 1;
      const expected = { days, firstDate: veteran.streak.first, lastDate: veteran.streak.last };
      expect(stats.streaks?.current).toMatchObject(expected);
      expect(stats.streaks?.longest).toMatchObject(expected);
      for (const kind of ["current", "longest"] as const) {
        const card = vet.locator(`#streaks [data-streak="${kind}"]`);
        const streak = stats.streaks?.[kind];
        expect(await card.getAttribute("data-days")).toBe(String(streak?.days));
        expect(await card.getAttribute("data-first")).toBe(streak?.firstDate);
        expect(await card.getAttribute("data-last")).toBe(streak?.lastDate);
        expect(await card.innerText()).toContain(`${streak?.days} days`);
      }

      await vet.evaluate(() => window.scrollTo(0, 0));
      await vet.locator("section[aria-labelledby=stats-heading]").screenshot({ path: shot("stats") });
      await vet.locator("#heatmap").locator("..").screenshot({ path: shot("heatmap") });
    });

    test("the activity chart switches between days, weeks, months and years as the API buckets them", async () => {
      screenshotOnFailure("buckets");
      const switcher = vet.getByRole("group", { name: "Activity by" });
      // Plays in the default ranges: 30 days, 26 weeks, 24 months, every year.
      const cases = [
        ["Weeks", ActivityBucket.WEEK, 45n],
        ["Months", ActivityBucket.MONTH, 48n],
        ["Years", ActivityBucket.YEAR, 48n],
        ["Days", ActivityBucket.DAY, 41n],
      ] as const;
      for (const [name, bucket, total] of cases) {
        await switcher.getByRole("button", { name }).click();
        await expect.poll(() => vet.locator("#activity-chart svg").getAttribute("data-bucket")).toBe(ActivityBucket[bucket]);
        expect(await switcher.getByRole("button", { name }).getAttribute("aria-pressed")).toBe("true");
        const stats = await vetApi.getLibraryStats({ timeZone: ZONE, activityBucket: bucket });
        expect(stats.activityBucket).toBe(bucket);
        expect(stats.activity.reduce((sum, a) => sum + a.plays, 0n)).toBe(total);
        const bars = await vet.locator("#activity-chart rect").evaluateAll((all) =>
          all.map((r) => ({
            date: r.getAttribute("data-date"),
            plays: r.getAttribute("data-plays"),
            counted: r.getAttribute("data-counted"),
          })),
        );
        expect(bars).toEqual(
          stats.activity.map((a) => ({ date: a.startDate, plays: String(a.plays), counted: String(a.countedPlays) })),
        );
        expect(await vet.locator("#activity-chart svg").getAttribute("aria-label")).toMatch(new RegExp(`^${total} plays `));
        if (bucket === ActivityBucket.MONTH) {
          await vet.locator("#activity-chart").locator("..").screenshot({ path: shot("activity-months") });
        }
      }
      expect(await vet.locator("#activity-caption").innerText()).toBe("Daily activity, last 30 days");
    });

    test("top tracks of this week, month and year, with their movement, are GetTopTracks' answer", async () => {
      screenshotOnFailure("top-tracks");
      const week = await vetApi.getTopTracks({ period: TopTracksPeriod.WEEK, timeZone: ZONE, pageSize: 10 });
      expect(week.totalSize).toBe(6n);
      expect(week.tracks.map((t) => t.rank)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(
        week.tracks.map((t) => ({
          trackId: t.trackId,
          counted: Number(t.countedPlays),
          previousRank: t.previousRank,
          isNew: t.newInPeriod,
        })),
      ).toEqual(veteran.week);

      const movementOf = (t: TopTrack) =>
        t.newInPeriod
          ? "new"
          : t.previousRank === 0
            ? "re-entry"
            : t.previousRank > t.rank
              ? "up"
              : t.previousRank < t.rank
                ? "down"
                : "same";
      const ms = (t: Timestamp | undefined) => (t ? timestampDate(t).getTime() : NaN);
      const local = (t: Timestamp | undefined) =>
        new Date(ms(t)).toLocaleString("en-GB", {
          timeZone: ZONE,
          weekday: "short",
          day: "2-digit",
          month: "2-digit",
          hour: "2-digit",
          minute: "2-digit",
        });
      // "Mon 30/11, 00:00": a week starts on a Monday, a month on its 1st, a year on 1 January.
      const starts = {
        [TopTracksPeriod.WEEK]: /^Mon \d\d\/\d\d, 00:00$/,
        [TopTracksPeriod.MONTH]: /^\w+ 01\/\d\d, 00:00$/,
        [TopTracksPeriod.YEAR]: /^\w+ 01\/01, 00:00$/,
      };
      const switcher = vet.getByRole("group", { name: "Top tracks of" });
      for (const [name, period] of [
        ["Week", TopTracksPeriod.WEEK],
        ["Month", TopTracksPeriod.MONTH],
        ["Year", TopTracksPeriod.YEAR],
      ] as const) {
        await switcher.getByRole("button", { name }).click();
        const summary = vet.locator("#top-period-summary");
        await expect.poll(() => summary.getAttribute("data-period")).toBe(TopTracksPeriod[period]);
        const answer = await vetApi.getTopTracks({ period, timeZone: ZONE, pageSize: 10 });
        // The calendar of Kathmandu, and the ranking the seeded plays make in it.
        for (const edge of [answer.previousPeriodStart, answer.periodStart, answer.periodEnd]) {
          expect(local(edge)).toMatch(starts[period]);
        }
        expect(
          answer.tracks.map((t) => ({
            rank: t.rank,
            previousRank: t.previousRank,
            trackId: t.trackId,
            plays: Number(t.plays),
            counted: Number(t.countedPlays),
            seconds: Number(t.listeningSeconds),
            isNew: t.newInPeriod,
          })),
        ).toEqual(rankingOf(veteran.plays, ms(answer.periodStart), ms(answer.periodEnd), ms(answer.previousPeriodStart)));
        expect(await summary.innerText()).toContain(`${answer.totalSize} tracks played`);
        const rows = await vet.locator("#top-period-tracks tr[data-track]").evaluateAll((all) =>
          all.map((r) => ({
            trackId: r.getAttribute("data-track"),
            rank: r.getAttribute("data-rank"),
            previousRank: r.getAttribute("data-previous-rank"),
            movement: r.getAttribute("data-movement"),
            counted: r.querySelector("[data-counted]")?.textContent,
            skipped: r.querySelector("[data-skipped]")?.textContent,
          })),
        );
        expect(rows).toEqual(
          answer.tracks.map((t) => ({
            trackId: t.trackId,
            rank: String(t.rank),
            previousRank: String(t.previousRank),
            movement: movementOf(t),
            counted: String(t.countedPlays),
            skipped: String(t.skippedPlays),
          })),
        );
        if (period === TopTracksPeriod.WEEK) {
          expect(rows.map((r) => r.movement)).toEqual(["up", "down", "new", "same", "down", "re-entry"]);
          const badges = vet.locator("#top-period-tracks [aria-label]");
          expect(await badges.evaluateAll((all) => all.map((b) => b.textContent))).toEqual(["▲ 2", "▼ 1", "new", "=", "▼ 3", "back"]);
          await vet.locator("section[aria-labelledby=top-heading]").screenshot({ path: shot("top-week") });
        }
      }
    });

    test("each liked track and each history row shows its play count as GetTrackPlayCounts answers", async () => {
      screenshotOnFailure("play-counts");
      const { a, b, c, d, e, f } = veteran.tracks;
      const { tracks } = await vetApi.getTrackPlayCounts({ trackIds: [a, b, c, d, e, f] });
      expect(tracks.map((t) => [t.plays, t.countedPlays, t.liked])).toEqual([
        [11n, 10n, false],
        [9n, 6n, false],
        [11n, 9n, true],
        [5n, 5n, false],
        [4n, 4n, true],
        [8n, 6n, false],
      ]);
      await expect.poll(async () => (await badges(vet, "#likes")).map((x) => x.counted)).toEqual(["4", "9"]);
      const liked = await badges(vet, "#likes");
      expect(liked).toEqual(expectedBadges(liked, tracks));
      await expect.poll(() => vet.locator("#history-status").innerText()).toBe("48 plays shown · that is all of your history");
      await expect.poll(async () => (await badges(vet, "#history")).every((x) => x.counted !== null)).toBe(true);
      const rows = await badges(vet, "#history");
      expect(rows).toHaveLength(48);
      expect(rows).toEqual(expectedBadges(rows, tracks));
      // The rows that do not count say so: the 8 of them.
      const counted: boolean[] = [];
      for await (const entry of vetApi.listHistory({})) counted.push(entry.play?.counted ?? false);
      const skipped = await vet.locator("#history tr").evaluateAll((all) => all.map((r) => r.querySelector("[data-skipped]") !== null));
      expect(skipped).toEqual(counted.map((c) => !c));
      expect(skipped.filter(Boolean)).toHaveLength(8);

      await vet.locator("section[aria-labelledby=likes-heading]").screenshot({ path: shot("likes") });
      await vet.locator("section[aria-labelledby=history-heading]").screenshot({ path: shot("history") });
      await vet.evaluate(() => window.scrollTo(0, 0));
      await vet.screenshot({ path: shot("veteran-full"), fullPage: true });
      expect(vetErrors).toEqual([]);
    });
  });
});
