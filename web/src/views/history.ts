// "Listening history": the ListHistory server stream, each play shown as it arrives; "Load more"
// resumes after the last cursor received. Each page then asks GetTrackPlayCounts once, for the
// play counts beside the rows and the hearts.
import type { HistoryEntry } from "../gen/audiohm/library/v1/library_pb.ts";
import { byId, el, show } from "../dom.ts";
import { instant, listeningTime, plays } from "../format.ts";
import type { Session } from "../session.ts";
import { fetchPlayCounts, paintPlayCounts, playCountBadge } from "./playcounts.ts";

const PAGE_SIZE = 50;

export class HistoryView {
  private cursor = "";
  private shown = 0;
  private streaming: AbortController | undefined;
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
    this.body.replaceChildren();
    await this.loadPage();
  }

  async loadMore() {
    await this.loadPage();
  }

  private stop() {
    this.streaming?.abort();
  }

  private async loadPage() {
    this.stop();
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
        this.body.append(this.row(entry));
        received += 1;
        this.shown += 1;
        this.cursor = entry.cursor;
        if (entry.play) tracks.add(entry.play.trackId);
        this.status.textContent = `Receiving… ${plays(this.shown)}`;
      }
    } catch (error) {
      if (streaming.signal.aborted || !this.session.active) return;
      this.session.report(error);
      // What arrived stays; "Load more" resumes after it.
      this.status.textContent = `${plays(this.shown)} shown`;
      show(this.more, true);
      this.more.disabled = false;
      return;
    }
    const complete = received < PAGE_SIZE;
    this.status.textContent =
      this.shown === 0
        ? "No plays yet."
        : `${plays(this.shown)} shown${complete ? " · that is all of your history" : ""}`;
    show(this.more, !complete);
    this.more.disabled = false;
    await this.paintCounts([...tracks]);
  }

  /** The page's one GetTrackPlayCounts call: it also says which tracks are liked, so the hearts
   * need no call of their own. */
  private async paintCounts(trackIds: string[]) {
    if (trackIds.length === 0) return;
    const counts = await fetchPlayCounts(this.session, trackIds);
    paintPlayCounts(this.body, trackIds, counts);
    for (const { trackId, liked } of counts ?? []) {
      this.session.liked.set(trackId, liked);
      for (const button of this.heartsOf(trackId)) paintHeart(button, liked);
    }
  }

  private heartsOf(trackId: string): NodeListOf<HTMLButtonElement> {
    return this.body.querySelectorAll(`button[data-heart="${CSS.escape(trackId)}"]`);
  }

  private row(entry: HistoryEntry): HTMLTableRowElement {
    const play = entry.play;
    const trackId = play?.trackId ?? "";
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
    const listened = el("td", { class: "px-4 py-2 text-slate-300", text: listeningTime(play?.playedForSeconds ?? 0) });
    if (play?.completed) {
      listened.append(" ", el("span", { class: "rounded bg-emerald-900/60 px-1.5 text-xs text-emerald-200", text: "to the end" }));
    } else if (play && !play.counted) {
      // Why the track's play count can be lower than its rows.
      listened.append(" ", el("span", { class: "rounded bg-slate-800 px-1.5 text-xs text-slate-400", "data-skipped": "", text: "skipped" }));
    }
    return el(
      "tr",
      { "data-play": play?.id ?? "" },
      el("td", { class: "whitespace-nowrap px-4 py-2 text-slate-300", text: instant(play?.playedAt) }),
      el("td", { class: "px-4 py-2 font-mono text-xs text-slate-200", text: trackId }),
      el("td", { class: "px-4 py-2" }, playCountBadge(trackId)),
      listened,
      el("td", { class: "px-4 py-2 text-slate-400", text: play?.source || "–" }),
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
