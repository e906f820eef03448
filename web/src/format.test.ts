import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, test } from "vitest";

import {
  activityBars,
  activitySummary,
  bucketCount,
  bucketLabel,
  count,
  dayRange,
  heatLevel,
  hourSlot,
  instant,
  listeningTime,
  movement,
  periodLabel,
  playCountDetails,
  plays,
  shortDay,
  trackClock,
} from "./format.ts";
import { ActivityBucket, TopTracksPeriod } from "./gen/audiohm/library/v1/library_pb.ts";

describe("listening time", () => {
  test.each([
    [0, "0 s"],
    [45, "45 s"],
    [240, "4 min"],
    [250, "4 min 10 s"],
    [3600 * 3 + 25 * 60 + 9, "3 h 25 min"],
    [3600 * 1234, "1,234 h 0 min"],
  ])("%i seconds read as %s", (seconds, text) => {
    expect(listeningTime(BigInt(seconds))).toBe(text);
  });
});

test("counts are grouped by thousands, and one play is one play", () => {
  expect(count(1234567n)).toBe("1,234,567");
  expect(plays(1n)).toBe("1 play");
  expect(plays(0)).toBe("0 plays");
  expect(plays(1234n)).toBe("1,234 plays");
});

test("days and instants read like dates, unset as a dash", () => {
  expect(shortDay("2026-11-05")).toBe("5 Nov");
  expect(instant(undefined)).toBe("–");
  expect(instant(timestampFromDate(new Date("2026-11-05T12:00:00Z")))).toMatch(/2026/);
});

describe("activity bars", () => {
  const day = (date: string, plays: number) => ({ date, plays: BigInt(plays), listeningSeconds: BigInt(plays * 60) });

  test("the busiest day fills the height and the others scale to it", () => {
    const bars = activityBars([day("2026-11-01", 4), day("2026-11-02", 1), day("2026-11-03", 0)], 300, 100);
    expect(bars.map((b) => b.height)).toEqual([100, 25, 0]);
    expect(bars.map((b) => b.y)).toEqual([0, 75, 100]);
    expect(bars[1]?.x).toBeGreaterThan(bars[0]?.x ?? Infinity);
    expect(bars.every((b) => b.x + b.width <= 300)).toBe(true);
  });

  test("a quiet day next to a busy one is still visible", () => {
    const bars = activityBars([day("2026-11-01", 1000), day("2026-11-02", 1)], 100, 100);
    expect(bars[1]?.height).toBeGreaterThanOrEqual(2);
  });

  test("no plays at all draws no bars but keeps the days", () => {
    const bars = activityBars([day("2026-11-01", 0), day("2026-11-02", 0)], 100, 50);
    expect(bars).toHaveLength(2);
    expect(bars.every((b) => b.height === 0)).toBe(true);
  });
});

describe("activity buckets", () => {
  test.each([
    [ActivityBucket.DAY, "2026-11-05", "5 Nov"],
    [ActivityBucket.WEEK, "2026-11-02", "week of 2 Nov"],
    [ActivityBucket.MONTH, "2026-11-01", "Nov 2026"],
    [ActivityBucket.YEAR, "2026-01-01", "2026"],
  ])("bucket %i starting %s reads as %s", (bucket, date, text) => {
    expect(bucketLabel(bucket, date)).toBe(text);
  });

  test("counts of buckets are singular for one", () => {
    expect(bucketCount(ActivityBucket.DAY, 30)).toBe("30 days");
    expect(bucketCount(ActivityBucket.WEEK, 1)).toBe("1 week");
    expect(bucketCount(ActivityBucket.MONTH, 24)).toBe("24 months");
  });

  const bar = (date: string, plays: number) => ({ date, plays });

  test("the summary names the active buckets and the busiest, the first of equals", () => {
    const days = [bar("2026-11-01", 0), bar("2026-11-02", 3), bar("2026-11-03", 3), bar("2026-11-04", 1)];
    expect(activitySummary(ActivityBucket.DAY, days)).toBe("7 plays on 3 of the last 4 days; busiest 2 Nov with 3 plays");
    const months = [bar("2026-10-01", 2), bar("2026-11-01", 5)];
    expect(activitySummary(ActivityBucket.MONTH, months)).toBe(
      "7 plays in 2 of the last 2 months; busiest Nov 2026 with 5 plays",
    );
    expect(activitySummary(ActivityBucket.YEAR, [bar("2026-01-01", 1)])).toBe("1 play this year; busiest 2026 with 1 play");
  });

  test("no plays, or no buckets, say so", () => {
    expect(activitySummary(ActivityBucket.DAY, [bar("2026-11-01", 0), bar("2026-11-02", 0)])).toBe(
      "No plays in the last 2 days",
    );
    expect(activitySummary(ActivityBucket.WEEK, [bar("2026-11-02", 0)])).toBe("No plays in this week");
    expect(activitySummary(ActivityBucket.YEAR, [])).toBe("No plays yet");
  });
});

test("day ranges include both days and name the year once", () => {
  expect(dayRange("2026-11-05", "2026-11-05")).toBe("5 Nov 2026");
  expect(dayRange("2026-11-03", "2026-11-09")).toBe("3–9 Nov 2026");
  expect(dayRange("2026-10-28", "2026-11-03")).toBe("28 Oct – 3 Nov 2026");
  expect(dayRange("2025-12-29", "2026-01-04")).toBe("29 Dec 2025 – 4 Jan 2026");
  expect(dayRange("", "")).toBe("");
});

describe("ranked periods", () => {
  // Kathmandu is 5:45 ahead of UTC: its week of Monday 2 Nov 2026 starts at 18:15 UTC the day before.
  const zone = "Asia/Kathmandu";
  const start = new Date("2026-11-01T18:15:00Z");

  test("a week reads as its first to its last day in the zone, its end excluded", () => {
    expect(periodLabel(TopTracksPeriod.WEEK, start, new Date("2026-11-08T18:15:00Z"), zone)).toBe("2–8 Nov 2026");
  });

  test("a month and a year read by name, in the zone", () => {
    expect(periodLabel(TopTracksPeriod.MONTH, start, new Date("2026-11-30T18:15:00Z"), zone)).toBe("November 2026");
    expect(periodLabel(TopTracksPeriod.YEAR, new Date("2025-12-31T18:15:00Z"), new Date("2026-12-31T18:15:00Z"), zone)).toBe(
      "2026",
    );
  });
});

describe("movement", () => {
  test.each([
    [3, 0, true, "new", "new"],
    [3, 5, true, "new", "new"],
    [6, 0, false, "re-entry", "back"],
    [1, 3, false, "up", "▲ 2"],
    [5, 2, false, "down", "▼ 3"],
    [4, 4, false, "same", "="],
  ])("rank %i, before %i, new %s: %s %s", (rank, previous, isNew, kind, text) => {
    const m = movement(rank, previous, isNew);
    expect(m.kind).toBe(kind);
    expect(m.text).toBe(text);
  });

  test("the spoken label says from where", () => {
    expect(movement(1, 3, false).label).toBe("Up 2 from #3");
    expect(movement(5, 2, false).label).toBe("Down 3 from #2");
  });
});

describe("hour-by-weekday cells", () => {
  test("slots name the ISO weekday and the hour, midnight wrapping", () => {
    expect(hourSlot(1, 0)).toBe("Mon 00:00–01:00");
    expect(hourSlot(7, 23)).toBe("Sun 23:00–00:00");
  });

  test("shades grow with the plays; any play shows, none is blank", () => {
    expect(heatLevel(0, 10)).toBe(0);
    expect(heatLevel(1, 100)).toBe(1);
    expect(heatLevel(5, 10)).toBe(2);
    expect(heatLevel(10, 10)).toBe(4);
    expect(heatLevel(0, 0)).toBe(0);
  });
});

test("a play count's details give what the number leaves out", () => {
  const at = timestampFromDate(new Date("2026-11-05T12:00:00Z"));
  expect(
    playCountDetails({ plays: 15n, countedPlays: 12n, skippedPlays: 3n, listeningSeconds: 2700n, lastPlayedAt: at }),
  ).toMatch(/^12 plays that count, 3 skipped, 45 min; last played 5 Nov 2026, \d\d:\d\d$/);
  expect(playCountDetails({ plays: 0n, countedPlays: 0n, skippedPlays: 0n, listeningSeconds: 0n })).toBe("Never played");
});

test("a position in a track reads as a player shows it", () => {
  expect([0, 7.9, 65, 225, 3599, 3723, -3].map(trackClock)).toEqual(["0:00", "0:07", "1:05", "3:45", "59:59", "1:02:03", "0:00"]);
});
