// Listening streaks: runs of days with a play that counts, over the whole history.
import { ActivityBucket, type Streak, type Streaks } from "../gen/audiohm/library/v1/library_pb.ts";
import { el } from "../dom.ts";
import { bucketCount, dayRange } from "../format.ts";

export function streakCards(streaks: Streaks | undefined): HTMLElement[] {
  return [
    card("current", "Current streak", streaks?.current, "No run of days up to today or yesterday."),
    card("longest", "Longest streak", streaks?.longest, "No plays that count yet."),
  ];
}

function card(kind: string, title: string, streak: Streak | undefined, none: string): HTMLElement {
  const days = streak?.days ?? 0;
  return el(
    "div",
    {
      class: "rounded-xl border border-slate-800 bg-slate-900 p-4",
      "data-streak": kind,
      "data-days": String(days),
      "data-first": streak?.firstDate ?? "",
      "data-last": streak?.lastDate ?? "",
    },
    el("h3", { class: "text-xs uppercase tracking-wide text-slate-400", text: title }),
    el("p", { class: "mt-1 text-2xl font-semibold", text: days > 0 ? bucketCount(ActivityBucket.DAY, days) : "–" }),
    el("p", {
      class: "mt-1 text-xs text-slate-500",
      text: days > 0 && streak ? dayRange(streak.firstDate, streak.lastDate) : none,
    }),
  );
}
