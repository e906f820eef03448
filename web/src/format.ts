// How numbers, durations and instants read on the page.
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";

import { ActivityBucket, TopTracksPeriod } from "./gen/audiohm/library/v1/library_pb.ts";

export function count(n: bigint | number): string {
  return n.toLocaleString("en");
}

/** "1 play", "1,234 plays". */
export function plays(n: bigint | number): string {
  return `${count(n)} ${Number(n) === 1 ? "play" : "plays"}`;
}

/** "3 h 25 min", "4 min 10 s", "45 s". */
export function listeningTime(totalSeconds: bigint | number): string {
  const s = Number(totalSeconds);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  if (hours > 0) return `${count(hours)} h ${minutes} min`;
  if (minutes > 0) return seconds > 0 ? `${minutes} min ${seconds} s` : `${minutes} min`;
  return `${seconds} s`;
}

/** A position in a track as a player shows it: "0:07", "3:45", "1:02:03" (whole seconds). */
export function trackClock(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

/** "25 Nov 2026, 14:03" in the browser's zone; "–" when unset. */
export function instant(ts: Timestamp | undefined): string {
  if (!ts) return "–";
  return timestampDate(ts).toLocaleString("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** "20 Nov" for a `YYYY-MM-DD` day. */
export function shortDay(date: string): string {
  const [y, m, d] = date.split("-").map(Number);
  if (!y || !m || !d) return date;
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", {
    day: "numeric",
    month: "short",
    timeZone: "UTC",
  });
}

export interface Bar {
  date: string;
  plays: number;
  seconds: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Bars for a chart `width` × `height`, tallest day at full height; an active day is never
 * drawn so short it cannot be seen. */
export function activityBars(
  days: { date: string; plays: bigint | number; listeningSeconds: bigint | number }[],
  width: number,
  height: number,
): Bar[] {
  const most = Math.max(1, ...days.map((d) => Number(d.plays)));
  const slot = days.length > 0 ? width / days.length : width;
  const gap = Math.min(2, slot * 0.2);
  return days.map((d, i) => {
    const plays = Number(d.plays);
    const h = plays === 0 ? 0 : Math.max(2, (plays / most) * height);
    return {
      date: d.date,
      plays,
      seconds: Number(d.listeningSeconds),
      x: i * slot + gap / 2,
      y: height - h,
      width: slot - gap,
      height: h,
    };
  });
}

// Calendar units of the activity chart and the top-tracks periods. The service counts in the
// listener's zone and sends days as "YYYY-MM-DD", so those are read as plain calendar dates (UTC)
// and never shifted again by the browser's zone.

const UNITS: Record<ActivityBucket, [string, string]> = {
  [ActivityBucket.UNSPECIFIED]: ["day", "days"],
  [ActivityBucket.DAY]: ["day", "days"],
  [ActivityBucket.WEEK]: ["week", "weeks"],
  [ActivityBucket.MONTH]: ["month", "months"],
  [ActivityBucket.YEAR]: ["year", "years"],
};

function calendarDate(date: string): Date | undefined {
  const [y, m, d] = date.split("-").map(Number);
  if (!y || !m || !d) return undefined;
  return new Date(Date.UTC(y, m - 1, d));
}

/** "5 Nov", "week of 3 Nov", "Nov 2026", "2026": the bucket that starts on `date`. */
export function bucketLabel(bucket: ActivityBucket, date: string): string {
  const day = calendarDate(date);
  if (!day) return date;
  switch (bucket) {
    case ActivityBucket.WEEK:
      return `week of ${shortDay(date)}`;
    case ActivityBucket.MONTH:
      return day.toLocaleDateString("en-GB", { month: "short", year: "numeric", timeZone: "UTC" });
    case ActivityBucket.YEAR:
      return String(day.getUTCFullYear());
    default:
      return shortDay(date);
  }
}

/** "30 days", "1 week". */
export function bucketCount(bucket: ActivityBucket, n: number): string {
  const [one, many] = UNITS[bucket];
  return `${count(n)} ${n === 1 ? one : many}`;
}

/** The sentence above the activity chart (and its accessible name). */
export function activitySummary(bucket: ActivityBucket, bars: { date: string; plays: number }[]): string {
  if (bars.length === 0) return "No plays yet";
  const total = bars.reduce((sum, b) => sum + b.plays, 0);
  const span = bars.length === 1 ? `this ${UNITS[bucket][0]}` : `the last ${bucketCount(bucket, bars.length)}`;
  if (total === 0) return `No plays in ${span}`;
  const active = bars.filter((b) => b.plays > 0);
  // Of equal buckets, the earliest: the one a reader meets first, left to right.
  const busiest = active.reduce((best, b) => (b.plays > best.plays ? b : best));
  const where = bars.length === 1 ? span : `${bucket <= ActivityBucket.DAY ? "on" : "in"} ${count(active.length)} of ${span}`;
  return `${plays(total)} ${where}; busiest ${bucketLabel(bucket, busiest.date)} with ${plays(busiest.plays)}`;
}

/** "5 Nov 2026", "3–9 Nov 2026", "28 Oct – 3 Nov 2026" for two `YYYY-MM-DD` days, both included. */
export function dayRange(first: string, last: string): string {
  const from = calendarDate(first);
  const to = calendarDate(last);
  if (!from || !to) return "";
  return spanOfDays(from, to, "UTC");
}

/** The days of `from` and `to` in `timeZone`, each part named once. Written out rather than
 * `Intl.DateTimeFormat.formatRange`, whose spacing differs between ICU versions (Node, Chromium). */
function spanOfDays(from: Date, to: Date, timeZone: string): string {
  const parts = (date: Date) => {
    const format = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric", timeZone });
    const get = (type: string) => format.formatToParts(date).find((p) => p.type === type)?.value ?? "";
    return { day: get("day"), month: get("month"), year: get("year") };
  };
  const a = parts(from);
  const b = parts(to);
  const end = `${b.day} ${b.month} ${b.year}`;
  if (a.year !== b.year) return `${a.day} ${a.month} ${a.year} – ${end}`;
  if (a.month !== b.month) return `${a.day} ${a.month} – ${end}`;
  if (a.day !== b.day) return `${a.day}–${end}`;
  return end;
}

/** "3–9 Nov 2026", "November 2026", "2026": a ranked period `[start, end)` as the calendar of
 * `timeZone` names it. */
export function periodLabel(period: TopTracksPeriod, start: Date, end: Date, timeZone: string): string {
  switch (period) {
    case TopTracksPeriod.MONTH:
      return start.toLocaleDateString("en-GB", { month: "long", year: "numeric", timeZone });
    case TopTracksPeriod.YEAR:
      return start.toLocaleDateString("en-GB", { year: "numeric", timeZone });
    default: {
      // The end is the first instant after the period; its last day is the one before.
      return spanOfDays(start, new Date(end.getTime() - 1), timeZone);
    }
  }
}

export interface Movement {
  kind: "new" | "re-entry" | "up" | "down" | "same";
  /** What the badge shows: "new", "back", "▲ 2", "▼ 1", "=". */
  text: string;
  /** What a screen reader says. */
  label: string;
}

/** How a track moved since the period before: its first play ever is in this period ("new"),
 * it was not played in the period before but earlier ("re-entry"), or it moved by ranks. */
export function movement(rank: number, previousRank: number, newInPeriod: boolean): Movement {
  if (newInPeriod) return { kind: "new", text: "new", label: "New: first played in this period" };
  if (previousRank === 0) return { kind: "re-entry", text: "back", label: "Back: not played in the period before" };
  if (previousRank > rank) {
    const by = previousRank - rank;
    return { kind: "up", text: `▲ ${by}`, label: `Up ${by} from #${previousRank}` };
  }
  if (previousRank < rank) {
    const by = rank - previousRank;
    return { kind: "down", text: `▼ ${by}`, label: `Down ${by} from #${previousRank}` };
  }
  return { kind: "same", text: "=", label: "Same rank as in the period before" };
}

export const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] as const;

/** "Mon 14:00–15:00" for an ISO weekday (1 = Monday) and an hour. */
export function hourSlot(weekday: number, hour: number): string {
  const pad = (h: number) => String(h).padStart(2, "0");
  return `${WEEKDAYS[weekday - 1] ?? "?"} ${pad(hour)}:00–${pad((hour + 1) % 24)}:00`;
}

/** 0 for no plays, else 1 to 4 by the share of the busiest cell; any play is at least 1. */
export function heatLevel(plays: number, most: number): number {
  if (plays <= 0 || most <= 0) return 0;
  return Math.min(4, Math.max(1, Math.ceil((plays / most) * 4)));
}

/** The tooltip of a track's play count: what the number leaves out. */
export function playCountDetails(c: {
  plays: bigint;
  countedPlays: bigint;
  skippedPlays: bigint;
  listeningSeconds: bigint;
  lastPlayedAt?: Timestamp;
}): string {
  if (c.plays === 0n) return "Never played";
  const parts = [`${plays(c.countedPlays)} that count`, `${count(c.skippedPlays)} skipped`, listeningTime(c.listeningSeconds)];
  return `${parts.join(", ")}; last played ${instant(c.lastPlayedAt)}`;
}
