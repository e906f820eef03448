// "Now playing": one card per device that is playing or paused, from GetNowPlaying and then the
// live stream's changes; the position advances every second while a track plays.
import { PlaybackState } from "../gen/audiohm/library/v1/library_pb.ts";
import { byId, el, show } from "../dom.ts";
import { trackClock } from "../format.ts";
import { type Playback, positionAt } from "../live/state.ts";

export class NowPlayingView {
  private readonly section = byId("now-playing-section");
  private readonly list = byId("now-playing");

  /** Draws the cards anew: `playbacks` by device, at `nowMs`. */
  render(playbacks: [string, Playback][], nowMs: number) {
    show(this.section, true);
    if (playbacks.length === 0) {
      this.list.replaceChildren(
        el("li", { class: "px-4 py-3 text-sm text-slate-500", "data-empty": "", text: "Nothing is playing on your devices." }),
      );
      return;
    }
    const cards = playbacks.map(([device, p]) => {
      const existing = this.list.querySelector<HTMLLIElement>(`li[data-device="${CSS.escape(device)}"]`);
      const card = existing?.dataset.playback === `${p.playback.playbackId}:${stateName(p)}` ? existing : this.card(device, p);
      this.tick(card, p, nowMs);
      return card;
    });
    this.list.replaceChildren(...cards);
  }

  /** Moves the positions on, without rebuilding the cards. */
  tick(card: HTMLLIElement, p: Playback, nowMs: number) {
    const position = positionAt(p, nowMs);
    const duration = p.playback.trackDurationSeconds;
    card.dataset.position = String(Math.floor(position));
    const time = card.querySelector("[data-time]");
    if (time) time.textContent = duration > 0 ? `${trackClock(position)} / ${trackClock(duration)}` : trackClock(position);
    const bar = card.querySelector<HTMLElement>("[data-progress]");
    if (bar) bar.style.width = duration > 0 ? `${Math.min(100, (position / duration) * 100).toFixed(1)}%` : "0%";
  }

  hide() {
    this.list.replaceChildren();
    show(this.section, false);
  }

  private card(device: string, p: Playback): HTMLLIElement {
    const { playback } = p;
    const playing = playback.state === PlaybackState.PLAYING;
    const state = el("span", {
      class: `shrink-0 whitespace-nowrap rounded px-1.5 py-0.5 text-xs font-medium ${playing ? "bg-emerald-900/60 text-emerald-200" : "bg-slate-800 text-slate-300"}`,
      text: playing ? "▶ Playing" : "❚❚ Paused",
    });
    const bar = el("div", { class: `h-full rounded-full ${playing ? "bg-violet-500" : "bg-slate-500"}`, "data-progress": "" });
    // The width moves every second; a CSS transition would lag behind it.
    bar.style.width = "0%";
    return el(
      "li",
      {
        class: "flex flex-col gap-2 px-4 py-3",
        "data-device": device,
        "data-track": playback.trackId,
        "data-state": stateName(p),
        "data-playback": `${playback.playbackId}:${stateName(p)}`,
      },
      el(
        "div",
        { class: "flex flex-wrap items-center justify-between gap-2" },
        el(
          "div",
          { class: "flex min-w-0 items-center gap-2" },
          state,
          el("span", { class: "break-all font-mono text-sm text-slate-200", text: playback.trackId }),
        ),
        el(
          "div",
          { class: "flex items-center gap-3 text-xs text-slate-400" },
          el("span", { text: `on ${device}` }),
          el("span", { text: playback.source ? `from ${playback.source}` : "" }),
        ),
      ),
      el(
        "div",
        { class: "flex items-center gap-3" },
        el("div", { class: "h-1.5 flex-1 overflow-hidden rounded-full bg-slate-800", role: "presentation" }, bar),
        el("span", { class: "w-24 shrink-0 text-right font-mono text-xs tabular-nums text-slate-300", "data-time": "" }),
      ),
    );
  }
}

function stateName(p: Playback): string {
  return p.playback.state === PlaybackState.PLAYING ? "playing" : "paused";
}
