// "Top tracks": this week's, month's or year's ranking in the browser's time zone, each track
// with how it moved since the period before.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { type GetTopTracksResponse, type TopTrack, TopTracksPeriod } from "../gen/audiohm/library/v1/library_pb.ts";
import { byId, el } from "../dom.ts";
import { count, listeningTime, type Movement, movement, periodLabel } from "../format.ts";
import type { Session } from "../session.ts";
import { choiceSwitch } from "./switch.ts";

const PAGE_SIZE = 10;

const PERIODS: { value: TopTracksPeriod; text: string; current: string }[] = [
  { value: TopTracksPeriod.WEEK, text: "Week", current: "This week" },
  { value: TopTracksPeriod.MONTH, text: "Month", current: "This month" },
  { value: TopTracksPeriod.YEAR, text: "Year", current: "This year" },
];

const BADGES: Record<Movement["kind"], string> = {
  new: "bg-amber-900/60 text-amber-200 uppercase tracking-wide",
  "re-entry": "bg-sky-900/60 text-sky-200",
  up: "text-emerald-300",
  down: "text-rose-300",
  same: "text-slate-400",
};

export class TopTracksView {
  private period = TopTracksPeriod.WEEK;
  private loading: AbortController | undefined;
  private readonly body = byId<HTMLTableSectionElement>("top-period-tracks");
  private readonly summary = byId("top-period-summary");

  constructor(private readonly session: Session) {
    byId("top-periods").replaceChildren(
      choiceSwitch("Top tracks of", PERIODS, this.period, (period) => {
        this.period = period;
        void this.load();
      }),
    );
  }

  async load() {
    this.loading?.abort();
    const loading = new AbortController();
    this.loading = loading;
    const period = this.period;
    this.body.setAttribute("aria-busy", "true");
    try {
      const page = await this.session.client.getTopTracks(
        { period, timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone, pageSize: PAGE_SIZE },
        { signal: AbortSignal.any([loading.signal, this.session.signal]) },
      );
      this.render(period, page);
    } catch (error) {
      if (!loading.signal.aborted) this.session.report(error);
    } finally {
      if (this.loading === loading) this.body.removeAttribute("aria-busy");
    }
  }

  private render(period: TopTracksPeriod, page: GetTopTracksResponse) {
    const name = PERIODS.find((p) => p.value === period)?.current ?? "";
    const range =
      page.periodStart && page.periodEnd
        ? periodLabel(period, timestampDate(page.periodStart), timestampDate(page.periodEnd), page.timeZone)
        : "";
    const played = `${count(page.totalSize)} ${page.totalSize === 1n ? "track" : "tracks"} played`;
    const shown = page.totalSize > BigInt(page.tracks.length) ? `, top ${page.tracks.length} shown` : "";
    this.summary.textContent = `${name}${range ? ` · ${range}` : ""} · ${played}${shown}`;
    this.summary.dataset.period = TopTracksPeriod[period];
    this.body.replaceChildren(
      ...(page.tracks.length === 0
        ? [
            el(
              "tr",
              { "data-empty": "" },
              el("td", { colspan: "6", class: "px-4 py-6 text-center text-slate-500", text: "Nothing played in this period yet." }),
            ),
          ]
        : page.tracks.map(row)),
    );
  }
}

function row(track: TopTrack): HTMLTableRowElement {
  const move = movement(track.rank, track.previousRank, track.newInPeriod);
  return el(
    "tr",
    {
      "data-track": track.trackId,
      "data-rank": String(track.rank),
      "data-previous-rank": String(track.previousRank),
      "data-movement": move.kind,
    },
    el("td", { class: "w-10 px-4 py-2 text-right font-semibold tabular-nums text-slate-200", text: String(track.rank) }),
    el(
      "td",
      { class: "w-16 px-2 py-2" },
      el("span", {
        class: `rounded px-1.5 py-0.5 text-xs font-medium tabular-nums ${BADGES[move.kind]}`,
        title: move.label,
        "aria-label": move.label,
        text: move.text,
      }),
    ),
    el("td", { class: "px-4 py-2 font-mono text-xs text-slate-200", text: track.trackId }),
    el("td", {
      class: "whitespace-nowrap px-4 py-2 text-right tabular-nums",
      "data-counted": String(track.countedPlays),
      text: count(track.countedPlays),
    }),
    el("td", {
      class: "whitespace-nowrap px-4 py-2 text-right tabular-nums text-slate-400",
      "data-skipped": String(track.skippedPlays),
      text: count(track.skippedPlays),
    }),
    el("td", {
      class: "whitespace-nowrap px-4 py-2 text-right text-slate-400",
      text: listeningTime(track.listeningSeconds),
    }),
  );
}
