// "Listening history": the ListHistory server stream, each play shown as it arrives; "Load more"
// resumes after the last cursor received. Each page then asks GetTrackPlayCounts once, for the
// play counts beside the rows and the hearts. Plays recorded or deleted elsewhere come from the
// live stream (`addPlay`, `removePlay`).
import type { Play, TrackPlayCount } from "../gen/audiohm/library/v1/library_pb.ts";
import { byId, el, show } from "../dom.ts";
import { instant, listeningTime, plays } from "../format.ts";
import type { Session } from "../session.ts";
import { fetchPlayCounts, paintPlayCounts, playCountBadge } from "./playcounts.ts";

const PAGE_SIZE = 50;

export class HistoryView {
  private cursor = "";
  private shown = 0;
  /** Every play before the last row has been read. */
  private complete = false;
  private streaming: AbortController | undefined;
  /** Live changes that came while a page was streaming, applied once it is in. */
  private pending: (() => void)[] = [];
  private readonly body = byId<HTMLTableSectionElement>("history");
  private readonly status = byId("history-status");
  private readonly more = byId<HTMLButtonElement>("history-more");

  constructor(private readonly session: Session) {
    session.onLikeChange((trackId, liked) => {
      for (const button of this.heartsOf(trackId)) paintHeart(button, liked);
    });
  }

  async reload() {
    this.cursor = "";
    this.shown = 0;
    this.complete = false;
    this.pending = [];
    this.body.replaceChildren();
    await this.loadPage();
  }

  /** A play recorded elsewhere: shown in its place (newest first), unless it belongs further down
   * than what has been read, where "Load more" will bring it. */
  addPlay(play: Play) {
    if (this.streaming) {
      this.pending.push(() => this.addPlay(play));
      return;
    }
    if (this.body.querySelector(`tr[data-play="${CSS.escape(play.id)}"]`)) return;
    const key = sortKey(play);
    const after = [...this.body.rows].find((row) => compareKeys(rowKey(row), key) < 0);
    if (!after && !this.complete) return;
    const row = this.row(play);
    // Marked for a moment, so that the eye finds it.
    row.classList.add("bg-violet-900/40");
    setTimeout(() => row.classList.remove("bg-violet-900/40"), 1500);
    this.body.insertBefore(row, after ?? null);
    this.shown += 1;
    this.renderStatus();
  }

  /** A play deleted elsewhere; the track of its row, if it was shown. */
  removePlay(playId: string): string | undefined {
    if (this.streaming) {
      this.pending.push(() => this.removePlay(playId));
      return undefined;
    }
    const row = this.body.querySelector<HTMLTableRowElement>(`tr[data-play="${CSS.escape(playId)}"]`);
    if (!row) return undefined;
    row.remove();
    this.shown -= 1;
    this.renderStatus();
    return row.dataset.track;
  }

  /** The tracks of the rows shown. */
  tracks(): string[] {
    return [...new Set([...this.body.rows].map((row) => row.dataset.track ?? ""))];
  }

  async loadMore() {
    await this.loadPage();
  }

  private stop() {
    this.streaming?.abort();
  }

  private async loadPage() {
    this.stop();
    this.pending = [];
    const streaming = new AbortController();
    this.streaming = streaming;
    this.more.disabled = true;
    this.status.textContent = "Loading…";
    const tracks = new Set<string>();
    let received = 0;
    try {
      const entries = this.session.client.listHistory(
        { limit: PAGE_SIZE, after: this.cursor },
        { signal: AbortSignal.any([streaming.signal, this.session.signal]) },
      );
      for await (const entry of entries) {
        received += 1;
        this.cursor = entry.cursor;
        if (!entry.play) continue;
        this.body.append(this.row(entry.play));
        this.shown += 1;
        tracks.add(entry.play.trackId);
        this.status.textContent = `Receiving… ${plays(this.shown)}`;
      }
    } catch (error) {
      if (streaming.signal.aborted || !this.session.active) return;
      this.session.report(error);
      // What arrived stays; "Load more" resumes after it.
      this.settle();
      this.status.textContent = `${plays(this.shown)} shown`;
      show(this.more, true);
      this.more.disabled = false;
      return;
    }
    this.complete = received < PAGE_SIZE;
    this.settle();
    this.renderStatus();
    show(this.more, !this.complete);
    this.more.disabled = false;
    await this.paintCounts([...tracks]);
  }

  /** The page is in: apply what came live meanwhile. */
  private settle() {
    this.streaming = undefined;
    const pending = this.pending;
    this.pending = [];
    for (const change of pending) change();
  }

  private renderStatus() {
    this.status.textContent =
      this.shown === 0
        ? "No plays yet."
        : `${plays(this.shown)} shown${this.complete ? " · that is all of your history" : ""}`;
  }

  /** The page's one GetTrackPlayCounts call: it also says which tracks are liked, so the hearts
   * need no call of their own. */
  private async paintCounts(trackIds: string[]) {
    if (trackIds.length === 0) return;
    this.showCounts(trackIds, await fetchPlayCounts(this.session, trackIds));
  }

  /** Fills the badges and hearts of `trackIds` from a GetTrackPlayCounts answer. */
  showCounts(trackIds: string[], counts: TrackPlayCount[] | undefined) {
    paintPlayCounts(this.body, trackIds, counts);
    for (const { trackId, liked } of counts ?? []) {
      this.session.liked.set(trackId, liked);
      for (const button of this.heartsOf(trackId)) paintHeart(button, liked);
    }
  }

  private heartsOf(trackId: string): NodeListOf<HTMLButtonElement> {
    return this.body.querySelectorAll(`button[data-heart="${CSS.escape(trackId)}"]`);
  }

  private row(play: Play): HTMLTableRowElement {
    const trackId = play.trackId;
    const heart = el("button", {
      type: "button",
      class: "rounded-md px-2 py-1 text-lg leading-none hover:bg-slate-800 disabled:opacity-40",
      "data-heart": trackId,
    });
    const known = this.session.liked.get(trackId);
    if (known === undefined) {
      heart.disabled = true;
      heart.textContent = "♡";
      heart.setAttribute("aria-label", `Like ${trackId}`);
    } else {
      paintHeart(heart, known);
    }
    heart.addEventListener("click", async () => {
      const liked = heart.getAttribute("aria-pressed") === "true";
      heart.disabled = true;
      await this.session.setLiked(trackId, !liked);
      heart.disabled = false;
    });
    const listened = el("td", { class: "px-4 py-2 text-slate-300", text: listeningTime(play.playedForSeconds) });
    if (play.completed) {
      listened.append(" ", el("span", { class: "rounded bg-emerald-900/60 px-1.5 text-xs text-emerald-200", text: "to the end" }));
    } else if (!play.counted) {
      // Why the track's play count can be lower than its rows.
      listened.append(" ", el("span", { class: "rounded bg-slate-800 px-1.5 text-xs text-slate-400", "data-skipped": "", text: "skipped" }));
    }
    return el(
      "tr",
      { class: "transition-colors duration-1000", "data-play": play.id, "data-track": trackId, "data-key": sortKey(play) },
      el("td", { class: "whitespace-nowrap px-4 py-2 text-slate-300", text: instant(play.playedAt) }),
      el("td", { class: "px-4 py-2 font-mono text-xs text-slate-200", text: trackId }),
      el("td", { class: "px-4 py-2" }, playCountBadge(trackId)),
      listened,
      el("td", { class: "px-4 py-2 text-slate-400", text: play.source || "–" }),
      el("td", { class: "px-4 py-2 text-right" }, heart),
    );
  }
}

function paintHeart(button: HTMLButtonElement, liked: boolean) {
  button.disabled = false;
  button.textContent = liked ? "♥" : "♡";
  button.classList.toggle("text-rose-400", liked);
  button.setAttribute("aria-pressed", String(liked));
  const trackId = button.dataset.heart ?? "";
  button.setAttribute("aria-label", liked ? `Unlike ${trackId}` : `Like ${trackId}`);
}

/** The history's order, newest first: by `played_at`, then by ID (time-ordered UUIDs, compared
 * as their canonical lowercase text), as ListHistory sorts. */
function sortKey(play: Play): string {
  const seconds = String(play.playedAt?.seconds ?? 0n).padStart(12, "0");
  const nanos = String(play.playedAt?.nanos ?? 0).padStart(9, "0");
  return `${seconds}.${nanos}/${play.id}`;
}

function rowKey(row: HTMLTableRowElement): string {
  return row.dataset.key ?? "";
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
