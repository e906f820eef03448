// "When you listen": plays by hour of the week, Monday to Sunday down, midnight to 23:00 across,
// in the listener's zone.
import type { HourlyActivity } from "../gen/audiohm/library/v1/library_pb.ts";
import { el } from "../dom.ts";
import { count, heatLevel, hourSlot, plays, WEEKDAYS } from "../format.ts";

// Written out whole so that Tailwind finds the classes in the source.
const SHADES = ["bg-slate-800/60", "bg-violet-950", "bg-violet-800", "bg-violet-600", "bg-violet-400"] as const;

export function heatmap(cells: HourlyActivity[]): HTMLElement {
  // By weekday and hour rather than by position: the table does not depend on the order sent.
  const byHour = new Map(cells.map((c) => [`${c.weekday}:${c.hour}`, c]));
  const most = Math.max(0, ...cells.map((c) => Number(c.plays)));
  const busiest = cells.reduce<HourlyActivity | undefined>((best, c) => (best && best.plays >= c.plays ? best : c), undefined);
  const summary =
    busiest && busiest.plays > 0n
      ? `Busiest hour: ${hourSlot(busiest.weekday, busiest.hour)} with ${plays(busiest.plays)}`
      : "No plays yet";
  const hours = Array.from({ length: 24 }, (_, h) => h);
  const head = el(
    "tr",
    {},
    el("th", { scope: "col", class: "w-8" }, el("span", { class: "sr-only", text: "Day" })),
    ...hours.map((h) =>
      el("th", {
        scope: "col",
        class: "pb-1 text-left text-[10px] font-normal text-slate-500",
        // Every third hour is labelled on screen; all of them are for screen readers.
        "aria-label": `${String(h).padStart(2, "0")}:00`,
        text: h % 3 === 0 ? String(h).padStart(2, "0") : "",
      }),
    ),
  );
  const rows = WEEKDAYS.map((name, i) =>
    el(
      "tr",
      {},
      el("th", { scope: "row", class: "pr-2 text-left text-xs font-normal text-slate-400", text: name }),
      ...hours.map((h) => {
        const cell = byHour.get(`${i + 1}:${h}`);
        const n = Number(cell?.plays ?? 0n);
        const label = `${hourSlot(i + 1, h)}: ${plays(n)}, ${count(cell?.countedPlays ?? 0n)} that count`;
        return el(
          "td",
          { class: "p-px" },
          el("div", {
            class: `h-5 min-w-2.5 rounded-sm ${SHADES[heatLevel(n, most)]}`,
            role: "img",
            title: label,
            "aria-label": label,
            "data-weekday": String(i + 1),
            "data-hour": String(h),
            "data-plays": String(n),
            "data-counted": String(cell?.countedPlays ?? 0n),
          }),
        );
      }),
    ),
  );
  const legend = el(
    "div",
    { class: "mt-2 flex items-center justify-end gap-1 text-[10px] text-slate-500", "aria-hidden": "true" },
    "fewer",
    ...SHADES.map((shade) => el("span", { class: `inline-block h-2.5 w-2.5 rounded-sm ${shade}` })),
    "more",
  );
  return el(
    "div",
    {},
    el("p", { class: "mb-2 text-xs text-slate-400", "data-summary": "", text: summary }),
    el(
      "div",
      { class: "overflow-x-auto" },
      el("table", { class: "w-full table-fixed border-collapse" }, el("thead", {}, head), el("tbody", {}, ...rows)),
    ),
    legend,
  );
}
