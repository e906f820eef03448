// "Your listening": totals, the activity chart (days, weeks, months or years), top tracks,
// sources, the hour-by-weekday heatmap and the streaks, all from one GetLibraryStats call in the
// browser's time zone.
import { ActivityBucket, type LibraryStats } from "../gen/audiohm/library/v1/library_pb.ts";
import { byId, el } from "../dom.ts";
import { count, instant, listeningTime, plays } from "../format.ts";
import type { Session } from "../session.ts";
import { activityChart, BUCKET_CAPTIONS } from "./activity.ts";
import { heatmap } from "./heatmap.ts";
import { streakCards } from "./streaks.ts";
import { choiceSwitch } from "./switch.ts";

export class StatsView {
  private bucket = ActivityBucket.DAY;
  private loading: AbortController | undefined;

  constructor(private readonly session: Session) {
    byId("activity-buckets").replaceChildren(
      choiceSwitch(
        "Activity by",
        [
          { value: ActivityBucket.DAY, text: "Days" },
          { value: ActivityBucket.WEEK, text: "Weeks" },
          { value: ActivityBucket.MONTH, text: "Months" },
          { value: ActivityBucket.YEAR, text: "Years" },
        ],
        this.bucket,
        (bucket) => {
          this.bucket = bucket;
          void this.load();
        },
      ),
    );
  }

  /** False when the call failed (already reported): the first load tells whether the token works. */
  async load(): Promise<boolean> {
    // A newer load (another bucket, a like elsewhere) replaces one still in flight, so an
    // older answer can never overwrite a newer one.
    this.loading?.abort();
    const loading = new AbortController();
    this.loading = loading;
    const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const chart = byId("activity-chart");
    chart.setAttribute("aria-busy", "true");
    try {
      const stats = await this.session.client.getLibraryStats(
        { timeZone, topTracksLimit: 5, activityBucket: this.bucket },
        { signal: AbortSignal.any([loading.signal, this.session.signal]) },
      );
      render(stats);
      return true;
    } catch (error) {
      if (!loading.signal.aborted) this.session.report(error);
      return false;
    } finally {
      if (this.loading === loading) chart.removeAttribute("aria-busy");
    }
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
  byId("activity-caption").textContent = BUCKET_CAPTIONS[stats.activityBucket];
  byId("activity-chart").replaceChildren(activityChart(stats.activityBucket, stats.activity));
  byId("heatmap").replaceChildren(heatmap(stats.hourlyActivity));
  byId("streaks").replaceChildren(...streakCards(stats.streaks));
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
