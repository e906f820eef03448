// How numbers, durations and instants read on the page.
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";

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
