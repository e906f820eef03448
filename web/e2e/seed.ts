// A listener with months of history, built around the calendar weeks of Asia/Kathmandu, so that
// this week's ranking has every movement: a track up, one down, one the same, one new and one
// back after a break; so that some plays count and some do not, by every rule of Play.counted;
// and so that the days from last week's Monday to today are one streak.
import { randomUUID } from "node:crypto";

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";

import type { LibraryClient } from "../src/client.ts";
import { type NewPlaySchema, TopTracksPeriod } from "../src/gen/audiohm/library/v1/library_pb.ts";

export const ZONE = "Asia/Kathmandu";
const DAY = 24 * 3600 * 1000;

type NewPlay = MessageInitShape<typeof NewPlaySchema>;

/** How a play went; the first three count, the last three do not. */
type Way = "full" | "half" | "long" | "skip" | "short" | "unknown";
const COUNTING: Way[] = ["full", "half", "long"];

/** A play to record: which track, how and when. */
interface Planned {
  trackId: string;
  way: Way;
  at: number;
}

/** A recorded play as the service should count it. */
export interface Seeded {
  trackId: string;
  at: number;
  seconds: number;
  counted: boolean;
}

function newPlay({ trackId, way, at }: Planned, i: number): NewPlay {
  const duration = 150 + ((i * 37) % 170);
  const shape: Record<Way, Pick<NewPlay, "playedForSeconds" | "completed" | "trackDurationSeconds">> = {
    // To the end.
    full: { playedForSeconds: duration, completed: true, trackDurationSeconds: duration },
    // Past half of the track (and past 30 s), without reaching the end.
    half: { playedForSeconds: Math.ceil(duration / 2) + 5, completed: false, trackDurationSeconds: duration },
    // No duration known: 240 s is enough.
    long: { playedForSeconds: 245 + (i % 30), completed: false },
    // Skipped after a few seconds.
    skip: { playedForSeconds: 12, completed: false, trackDurationSeconds: duration },
    // Past half of a short track, but under 30 s.
    short: { playedForSeconds: 25, completed: false, trackDurationSeconds: 40 },
    // No duration known and under 240 s.
    unknown: { playedForSeconds: 200, completed: false },
  };
  return {
    trackId,
    ...shape[way],
    source: ["album", "playlist", "radio", "search"][i % 4],
    playedAt: timestampFromDate(new Date(at)),
    requestId: `veteran-${i}`,
  };
}

/** So many counted plays per track, and so many plays that do not count, interleaved so that no
 * two of the latter meet: spread over days, every day then has a play that counts. */
function interleave(counted: [string, number][], skipped: [string, number, Way][]): [string, Way][] {
  const ways: [string, Way][] = [];
  const pool = counted.flatMap(([track, n]) => Array.from({ length: n }, () => track));
  const skips = skipped.flatMap(([track, n, way]) => Array.from({ length: n }, (): [string, Way] => [track, way]));
  const every = Math.max(2, Math.floor(pool.length / (skips.length + 1)));
  pool.forEach((track, i) => {
    ways.push([track, COUNTING[i % COUNTING.length] ?? "full"]);
    if ((i + 1) % every === 0 && skips.length > 0) ways.push(skips.shift() ?? [track, "skip"]);
  });
  return [...ways, ...skips];
}

/** Spreads plays evenly over `[from, to)`, none at either end. */
function spread(ways: [string, Way][], from: number, to: number): Planned[] {
  return ways.map(([trackId, way], k) => ({ trackId, way, at: from + ((to - from) * (k + 0.5)) / ways.length }));
}

export interface Veteran {
  tracks: Record<"a" | "b" | "c" | "d" | "e" | "f", string>;
  /** Every play recorded, to work out what the service should answer. */
  plays: Seeded[];
  /** This week's ranking as designed: track, counted plays, rank the week before (0: none),
   * first played this week. */
  week: { trackId: string; counted: number; previousRank: number; isNew: boolean }[];
  /** The streak the plays make, in ZONE. */
  streak: { first: string; last: string };
}

/** The day of `at` in ZONE, "YYYY-MM-DD". */
export function zoneDay(at: Date): string {
  return at.toLocaleDateString("en-CA", { timeZone: ZONE });
}

export async function seedVeteran(api: LibraryClient): Promise<Veteran> {
  const now = Date.now();
  // The service's own calendar says where this week and the one before start.
  const empty = await api.getTopTracks({ period: TopTracksPeriod.WEEK, timeZone: ZONE, pageSize: 1 });
  if (!empty.periodStart || !empty.previousPeriodStart) throw new Error("GetTopTracks sent no period");
  const weekStart = timestampDate(empty.periodStart).getTime();
  const lastWeekStart = timestampDate(empty.previousPeriodStart).getTime();
  const [a, b, c, d, e, f] = Array.from({ length: 6 }, () => randomUUID()) as [string, string, string, string, string, string];

  const lastWeek = interleave(
    [[a, 5], [b, 4], [c, 3], [d, 2]],
    [[c, 1, "skip"], [c, 1, "short"]],
  );
  const thisWeek = spread(
    interleave(
      [[c, 6], [a, 5], [e, 4], [d, 3], [b, 2], [f, 1]],
      [[b, 2, "skip"], [b, 1, "unknown"], [a, 1, "short"]],
    ),
    weekStart,
    now,
  );
  // Months back: the month and year buckets, and F played before (so it is back, not new).
  const older: [Way, number][] = [
    ["full", 40 * DAY],
    ["half", 41 * DAY],
    ["skip", 41 * DAY - 3600_000],
    ["long", 95 * DAY],
    ["full", 200 * DAY],
    ["unknown", 380 * DAY],
    ["full", 420 * DAY],
  ];
  const planned = [
    ...older.map(([way, ago]): Planned => ({ trackId: f, way, at: lastWeekStart - ago })),
    ...spread(lastWeek, lastWeekStart, weekStart),
    ...thisWeek,
  ];
  const plays = planned.map(newPlay);
  const recorded = await api.recordPlays({ plays });
  if (recorded.recordedCount !== plays.length) throw new Error(`recorded ${recorded.recordedCount} of ${plays.length}`);

  const lastCounted = thisWeek.filter((p) => COUNTING.includes(p.way)).pop();
  return {
    tracks: { a, b, c, d, e, f },
    plays: planned.map((p, i) => ({
      trackId: p.trackId,
      at: p.at,
      seconds: plays[i]?.playedForSeconds ?? 0,
      counted: COUNTING.includes(p.way),
    })),
    week: [
      { trackId: c, counted: 6, previousRank: 3, isNew: false },
      { trackId: a, counted: 5, previousRank: 1, isNew: false },
      { trackId: e, counted: 4, previousRank: 0, isNew: true },
      { trackId: d, counted: 3, previousRank: 4, isNew: false },
      { trackId: b, counted: 2, previousRank: 2, isNew: false },
      { trackId: f, counted: 1, previousRank: 0, isNew: false },
    ],
    streak: { first: zoneDay(new Date(lastWeekStart)), last: zoneDay(new Date(lastCounted?.at ?? now)) },
  };
}

/** The ranking of `[start, end)` as GetTopTracks documents it, worked out from the plays: most
 * counted plays first, then most plays, most seconds, track ID; each with its rank in
 * `[previousStart, start)` and whether its first play ever is in the period. */
export function rankingOf(plays: Seeded[], start: number, end: number, previousStart: number) {
  const rank = (from: number, to: number) => {
    const tallies = new Map<string, { trackId: string; plays: number; counted: number; seconds: number }>();
    for (const p of plays.filter((p) => p.at >= from && p.at < to)) {
      const t = tallies.get(p.trackId) ?? { trackId: p.trackId, plays: 0, counted: 0, seconds: 0 };
      t.plays += 1;
      t.counted += p.counted ? 1 : 0;
      t.seconds += p.seconds;
      tallies.set(p.trackId, t);
    }
    return [...tallies.values()].sort(
      (x, y) =>
        y.counted - x.counted ||
        y.plays - x.plays ||
        y.seconds - x.seconds ||
        (x.trackId < y.trackId ? -1 : 1),
    );
  };
  const before = rank(previousStart, start);
  const firstPlay = (trackId: string) => Math.min(...plays.filter((p) => p.trackId === trackId).map((p) => p.at));
  return rank(start, end).map((t, i) => ({
    rank: i + 1,
    previousRank: before.findIndex((b) => b.trackId === t.trackId) + 1,
    trackId: t.trackId,
    plays: t.plays,
    counted: t.counted,
    seconds: t.seconds,
    isNew: firstPlay(t.trackId) >= start && firstPlay(t.trackId) < end,
  }));
}

/** Plays per ISO weekday (1 = Monday) and hour in ZONE, as "weekday:hour" -> [plays, counted]. */
export function hoursOf(plays: Seeded[]): Map<string, [number, number]> {
  const format = new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, weekday: "short", hour: "2-digit", hourCycle: "h23" });
  const cells = new Map<string, [number, number]>();
  for (const p of plays) {
    const parts = format.formatToParts(new Date(p.at));
    const name = parts.find((x) => x.type === "weekday")?.value ?? "";
    const weekday = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].indexOf(name) + 1;
    const hour = Number(parts.find((x) => x.type === "hour")?.value);
    const key = `${weekday}:${hour}`;
    const [n, counted] = cells.get(key) ?? [0, 0];
    cells.set(key, [n + 1, counted + (p.counted ? 1 : 0)]);
  }
  return cells;
}
