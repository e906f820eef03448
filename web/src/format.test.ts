import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, test } from "vitest";

import { activityBars, count, instant, listeningTime, plays, shortDay } from "./format.ts";

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
