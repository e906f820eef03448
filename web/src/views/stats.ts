// "Your listening": totals, the daily-activity chart, top tracks and sources.
import type { DailyActivity, LibraryStats } from "../gen/audiohm/library/v1/library_pb.ts";
import { byId, el, svg } from "../dom.ts";
import { activityBars, count, instant, listeningTime, plays, shortDay } from "../format.ts";
import type { Session } from "../session.ts";

const CHART_WIDTH = 600;
const CHART_HEIGHT = 140;

export async function loadStats(session: Session): Promise<boolean> {
  const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  try {
    const stats = await session.client.getLibraryStats({ timeZone, topTracksLimit: 5 }, { signal: session.signal });
    render(stats);
    return true;
  } catch (error) {
    session.report(error);
    return false;
  }
}

function render(stats: LibraryStats) {
  byId("stats-zone").textContent = `Days in ${stats.timeZone}`;
  const card = (label: string, value: string, size = "text-2xl") =>
    el(
      "div",
      { class: "rounded-xl border border-slate-800 bg-slate-900 p-4" },
      el("dt", { class: "text-xs uppercase tracking-wide text-slate-400", text: label }),
      el("dd", { class: `mt-1 font-semibold ${size}`, text: value }),
    );
  byId("stats-cards").replaceChildren(
    card("Plays", count(stats.totalPlays)),
    card("Played to the end", count(stats.completedPlays)),
    card("Listening time", listeningTime(stats.listeningSeconds)),
    card("Different tracks", count(stats.uniqueTracks)),
    card("Liked tracks", count(stats.likedTracks)),
    card("Last played", instant(stats.lastPlayedAt), "text-base"),
  );
  byId("activity-chart").replaceChildren(chart(stats.dailyActivity));
  ranked(
    "top-tracks",
    stats.topTracks.map((t) => ({ name: t.trackId, plays: t.plays })),
    "truncate font-mono text-xs leading-5 text-slate-300",
  );
  ranked(
    "sources",
    stats.playsBySource.map((s) => ({ name: s.source || "unknown", plays: s.plays })),
    "",
  );
}

/** A "name … N plays" list, most played first as the service sends it. */
function ranked(id: string, rows: { name: string; plays: bigint }[], nameClass: string) {
  byId(id).replaceChildren(
    ...(rows.length === 0
      ? [el("li", { class: "text-slate-500", text: "Nothing played yet." })]
      : rows.map((row) =>
          el(
            "li",
            { class: "flex justify-between gap-3" },
            el("span", { class: nameClass, text: row.name }),
            el("span", { class: "shrink-0 text-slate-400", text: plays(row.plays) }),
          ),
        )),
  );
}

function chart(days: DailyActivity[]): HTMLElement {
  const bars = activityBars(days, CHART_WIDTH, CHART_HEIGHT);
  const total = bars.reduce((sum, b) => sum + b.plays, 0);
  const active = bars.filter((b) => b.plays > 0);
  const busiest = active.reduce<(typeof bars)[number] | undefined>(
    (best, b) => (best && best.plays >= b.plays ? best : b),
    undefined,
  );
  const summary = busiest
    ? `${plays(total)} on ${active.length} of the last ${bars.length} days; busiest ${shortDay(busiest.date)} with ${plays(busiest.plays)}`
    : `No plays in the last ${bars.length} days`;
  const drawing = svg(
    "svg",
    {
      viewBox: `0 0 ${CHART_WIDTH} ${CHART_HEIGHT}`,
      class: "h-40 w-full",
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": summary,
    },
    ...bars.map((b) =>
      svg(
        "rect",
        {
          x: String(b.x),
          y: String(b.y),
          width: String(b.width),
          height: String(b.height),
          rx: "1.5",
          class: "fill-violet-500",
          "data-date": b.date,
          "data-plays": String(b.plays),
        },
        svg("title", { text: `${shortDay(b.date)}: ${plays(b.plays)}, ${listeningTime(b.seconds)}` }),
      ),
    ),
  );
  const first = bars[0];
  const last = bars[bars.length - 1];
  return el(
    "div",
    {},
    el("p", { class: "mb-2 text-xs text-slate-400", text: summary }),
    el("div", { class: "rounded-lg bg-slate-950/60 p-2" }, drawing),
    el(
      "div",
      { class: "mt-1 flex justify-between text-xs text-slate-500" },
      el("span", { text: first ? shortDay(first.date) : "" }),
      el("span", { text: last ? shortDay(last.date) : "" }),
    ),
  );
}
