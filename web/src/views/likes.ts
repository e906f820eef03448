// "Liked tracks": like a track by ID, edit notes, unlike, page through with the page token; each
// page's play counts from one GetTrackPlayCounts call. Likes, notes and unlikes made elsewhere
// come from the live stream.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import type { LikedTrack, TrackPlayCount } from "../gen/audiohm/library/v1/library_pb.ts";
import { byId, el, show } from "../dom.ts";
import { count } from "../format.ts";
import { notice } from "../notice.ts";
import type { Session } from "../session.ts";
import { fetchPlayCounts, paintPlayCounts, playCountBadge } from "./playcounts.ts";

const PAGE_SIZE = 20;

export class LikesView {
  private nextPageToken = "";
  private total = 0n;
  /** Counts reloads, so that a page from an older one is dropped. */
  private generation = 0;
  private readonly list = byId<HTMLUListElement>("likes");
  private readonly more = byId<HTMLButtonElement>("likes-more");

  constructor(private readonly session: Session) {
    session.onLikeChange((trackId, liked) => {
      // A like from elsewhere on the page lands on the first page (newest first).
      if (liked && !this.rowOf(trackId)) void this.reload();
      if (!liked) this.removeRow(trackId);
    });
  }

  async reload() {
    this.generation += 1;
    this.nextPageToken = "";
    this.list.replaceChildren();
    await this.loadPage();
  }

  /** A like or new notes from elsewhere: the notes change in place, unless the listener is
   * editing them here. A track not shown yet comes with `Session.announce`'s reload. */
  applyLiked(like: LikedTrack) {
    const row = this.rowOf(like.trackId);
    const notes = row?.querySelector<HTMLInputElement>("input[data-notes]");
    if (!row || !notes || notes.dataset.saved === like.notes) return;
    const editing = notes.value !== notes.dataset.saved;
    notes.dataset.saved = like.notes;
    if (!editing) notes.value = like.notes;
    // The save button compares with what the service now has.
    notes.dispatchEvent(new Event("input"));
  }

  /** The tracks shown. */
  tracks(): string[] {
    return [...this.list.querySelectorAll<HTMLLIElement>("li[data-track]")].map((row) => row.dataset.track ?? "");
  }

  /** Fills the play-count badges of `trackIds` from a GetTrackPlayCounts answer. */
  showCounts(trackIds: string[], counts: TrackPlayCount[] | undefined) {
    paintPlayCounts(this.list, trackIds, counts);
  }

  private rowOf(trackId: string): HTMLLIElement | null {
    return this.list.querySelector(`li[data-track="${CSS.escape(trackId)}"]`);
  }

  async loadMore() {
    await this.loadPage();
  }

  private async loadPage() {
    const generation = this.generation;
    this.more.disabled = true;
    try {
      const page = await this.session.client.listLikedTracks(
        { pageSize: PAGE_SIZE, pageToken: this.nextPageToken },
        { signal: this.session.signal },
      );
      if (generation !== this.generation) return;
      this.total = page.totalSize;
      this.nextPageToken = page.nextPageToken;
      for (const like of page.likedTracks) this.session.liked.set(like.trackId, true);
      // A track liked meanwhile may already be shown.
      const fresh = page.likedTracks.filter((like) => !this.rowOf(like.trackId));
      this.list.append(...fresh.map((like) => this.row(like)));
      this.renderFooter();
      const trackIds = fresh.map((like) => like.trackId);
      if (trackIds.length > 0) paintPlayCounts(this.list, trackIds, await fetchPlayCounts(this.session, trackIds));
    } catch (error) {
      this.session.report(error);
    } finally {
      this.more.disabled = false;
    }
  }

  /** The like form: the service validates the ID and the notes. */
  async like(trackId: string, notes: string): Promise<boolean> {
    try {
      const { likedTrack, alreadyLiked } = await this.session.client.likeTrack(
        // Empty notes on an existing like keep its notes.
        { trackId, notes: notes === "" ? undefined : notes },
        { signal: this.session.signal },
      );
      notice("info", alreadyLiked ? "You already like that track." : "Track liked.");
      if (likedTrack) this.session.announce(likedTrack.trackId, true);
      return true;
    } catch (error) {
      this.session.report(error);
      return false;
    }
  }

  private renderFooter() {
    byId("likes-total").textContent = `${count(this.total)} liked`;
    if (this.list.childElementCount === 0) {
      this.list.append(
        el("li", { class: "px-4 py-6 text-center text-sm text-slate-500", "data-empty": "", text: "No liked tracks yet." }),
      );
    }
    show(this.more, this.nextPageToken !== "");
  }

  private removeRow(trackId: string) {
    const row = this.rowOf(trackId);
    if (!row) return;
    row.remove();
    this.total = this.total > 0n ? this.total - 1n : 0n;
    this.renderFooter();
  }

  private row(like: LikedTrack): HTMLLIElement {
    this.list.querySelector("li[data-empty]")?.remove();
    const notes = el("input", {
      class:
        "w-full rounded-lg border border-slate-700 bg-slate-950 px-3 py-1.5 text-sm focus:border-violet-500 focus:outline-none",
      "aria-label": `Notes for ${like.trackId}`,
      maxlength: "1000",
      placeholder: "Add a note",
      "data-notes": "",
    });
    notes.value = like.notes;
    // What the service has, to tell an edit in progress from notes changed elsewhere.
    notes.dataset.saved = like.notes;
    const save = el("button", {
      type: "submit",
      class: "rounded-lg border border-slate-700 px-3 py-1.5 text-sm hover:bg-slate-800 disabled:opacity-40",
      text: "Save notes",
    });
    save.disabled = true;
    notes.addEventListener("input", () => {
      save.disabled = notes.value === notes.dataset.saved;
    });
    const form = el("form", { class: "flex w-full gap-2 sm:w-auto sm:min-w-64 sm:flex-1" }, notes, save);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      save.disabled = true;
      try {
        const updated = await this.session.client.updateLikedTrack(
          { trackId: like.trackId, notes: notes.value },
          { signal: this.session.signal },
        );
        notes.dataset.saved = updated.notes;
        notice("info", "Notes saved.");
      } catch (error) {
        this.session.report(error);
        save.disabled = false;
      }
    });
    const unlike = el("button", {
      type: "button",
      class: "rounded-lg border border-rose-800 px-3 py-1.5 text-sm text-rose-200 hover:bg-rose-950",
      "aria-label": `Unlike ${like.trackId}`,
      text: "Unlike",
    });
    unlike.addEventListener("click", async () => {
      unlike.disabled = true;
      if (!(await this.session.setLiked(like.trackId, false))) unlike.disabled = false;
    });
    const likedOn = like.likedAt ? timestampDate(like.likedAt).toLocaleDateString("en-GB", { dateStyle: "medium" }) : "";
    return el(
      "li",
      { class: "flex flex-wrap items-center gap-3 px-4 py-3", "data-track": like.trackId },
      el(
        "div",
        { class: "min-w-0 sm:min-w-72" },
        el("div", { class: "break-all font-mono text-sm text-slate-200", text: like.trackId }),
        el(
          "div",
          { class: "flex gap-3 text-xs text-slate-500" },
          el("span", { text: likedOn ? `Liked ${likedOn}` : "" }),
          playCountBadge(like.trackId),
        ),
      ),
      form,
      unlike,
    );
  }
}
