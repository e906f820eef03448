// Keeps a signed-in page up to date: the live stream's events go through the reducer to the
// views; the figures drawn from them are read again at most once a second.
import { Code, ConnectError } from "@connectrpc/connect";

import type { LibraryEvent } from "../gen/audiohm/library/v1/library_pb.ts";
import { clearTransientNotice } from "../notice.ts";
import type { Session } from "../session.ts";
import { throttle, type Throttled } from "../throttle.ts";
import { showLink } from "../views/connection.ts";
import type { HistoryView } from "../views/history.ts";
import type { LikesView } from "../views/likes.ts";
import { NowPlayingView } from "../views/nowplaying.ts";
import { fetchPlayCounts } from "../views/playcounts.ts";
import { LiveFeed } from "./feed.ts";
import { current, type Effect, initialState, type LiveState, mergeSnapshot, reduce, snapshotRequested } from "./state.ts";

export interface LiveViews {
  history: HistoryView;
  likes: LikesView;
  /** Reads the stats and the top tracks again. */
  refreshFigures(): void;
}

/** How long a hidden page keeps its stream before closing it (it resumes from its cursor). */
const HIDDEN_GRACE_MS = 60_000;

export class LiveLibrary {
  private state: LiveState = initialState;
  private readonly feed: LiveFeed;
  private readonly nowPlaying = new NowPlayingView();
  private readonly figures: Throttled;
  private readonly counts: Throttled;
  private readonly historyReload: Throttled;
  private readonly countsDue = new Set<string>();
  /** The card shows once GetNowPlaying or an event has said what plays; not at all when the
   * service has no such call. */
  private card: "unknown" | "known" | "unavailable" = "unknown";
  private ticker: ReturnType<typeof setInterval> | undefined;
  private watchedBefore = false;
  private hiddenTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly stopped = new AbortController();

  constructor(
    private readonly session: Session,
    private readonly views: LiveViews,
  ) {
    this.figures = throttle(() => views.refreshFigures(), 1000);
    this.counts = throttle(() => this.refreshCounts(), 1000);
    // An import sends an event per batch: reading the history again for each would spend the
    // stream quota (each read is a stream) in seconds.
    this.historyReload = throttle(() => void views.history.reload(), 2000);
    this.feed = new LiveFeed(session.client, {
      event: (event, receivedAtMs) => this.apply(event, receivedAtMs),
      resync: () => this.resync(),
      link: (link) => showLink(link),
      fail: (error) => session.report(error),
    });
    const options = { signal: this.stopped.signal };
    document.addEventListener("visibilitychange", () => this.visibilityChanged(), options);
    window.addEventListener("pagehide", () => this.feed.stop(), options);
    window.addEventListener("pageshow", () => this.feed.start(), options);
  }

  /** Opens the stream and reads what is playing now. */
  start() {
    this.feed.start();
    void this.loadNowPlaying();
    this.ticker = setInterval(() => this.render(), 1000);
  }

  /** Reads the stats and top tracks again: at once, or once more at the end of the second. */
  refreshFigures() {
    this.figures();
  }

  stop() {
    this.stopped.abort();
    this.feed.stop();
    this.figures.cancel();
    this.counts.cancel();
    this.historyReload.cancel();
    clearInterval(this.ticker);
    clearTimeout(this.hiddenTimer);
    this.nowPlaying.hide();
    showLink(undefined);
  }

  /** Live again after the stream was lost (and resumed from its cursor): what failed meanwhile
   * for want of a service is read again, and no longer reported. */
  private reconnected() {
    clearTransientNotice();
    this.figures();
    this.countsDue.add("*");
    this.counts();
  }

  private apply(event: LibraryEvent, receivedAtMs: number) {
    if (event.event.case === "watching") {
      if (this.watchedBefore) this.reconnected();
      this.watchedBefore = true;
    }
    const { state, effects } = reduce(this.state, event, receivedAtMs);
    const nowPlayingChanged = state.nowPlaying !== this.state.nowPlaying;
    this.state = state;
    for (const effect of effects) this.perform(effect);
    if (nowPlayingChanged) {
      this.card = "known";
      this.render();
    }
  }

  private perform(effect: Effect) {
    const { history, likes } = this.views;
    switch (effect.kind) {
      case "play-recorded":
        history.addPlay(effect.play);
        this.countsDue.add(effect.play.trackId);
        this.counts();
        break;
      case "play-deleted":
        // A row not shown leaves its track unknown: then every shown count may have changed.
        this.countsDue.add(history.removePlay(effect.playId) ?? "*");
        this.counts();
        break;
      case "history-changed":
        // The reload reads the history's counts; the liked tracks' follow.
        this.historyReload();
        this.countsDue.add("*");
        this.counts();
        break;
      case "liked":
        likes.applyLiked(effect.like);
        if (this.session.liked.get(effect.like.trackId) !== true) this.session.announce(effect.like.trackId, true);
        break;
      case "unliked":
        if (this.session.liked.get(effect.trackId) !== false) this.session.announce(effect.trackId, false);
        break;
      case "stats-changed":
        this.figures();
        break;
    }
  }

  /** Events were lost (the cursor expired): everything is read again. */
  private resync() {
    void this.views.history.reload();
    void this.views.likes.reload();
    this.figures();
    void this.loadNowPlaying();
  }

  /** One GetTrackPlayCounts call for the tracks whose plays changed, as far as they are shown
   * (at most the call's 500). */
  private async refreshCounts() {
    const { history, likes } = this.views;
    const shown = new Set([...history.tracks(), ...likes.tracks()]);
    const trackIds = (this.countsDue.has("*") ? [...shown] : [...this.countsDue].filter((t) => shown.has(t))).slice(0, 500);
    this.countsDue.clear();
    if (trackIds.length === 0) return;
    const counts = await fetchPlayCounts(this.session, trackIds);
    history.showCounts(trackIds, counts);
    likes.showCounts(trackIds, counts);
  }

  private async loadNowPlaying() {
    this.state = snapshotRequested(this.state);
    try {
      const { playbacks } = await this.session.client.getNowPlaying({}, { signal: this.session.signal });
      this.state = mergeSnapshot(this.state, playbacks, Date.now());
      this.card = "known";
      this.render();
    } catch (error) {
      // A service without live updates: the page works without the card.
      if (ConnectError.from(error).code === Code.Unimplemented) {
        this.card = "unavailable";
        this.nowPlaying.hide();
      } else {
        this.session.report(error);
      }
    }
  }

  private render() {
    if (!this.session.active || this.card !== "known") return;
    this.nowPlaying.render(current(this.state, Date.now()), Date.now());
  }

  private visibilityChanged() {
    clearTimeout(this.hiddenTimer);
    if (document.visibilityState === "visible") this.feed.start();
    else this.hiddenTimer = setTimeout(() => this.feed.stop(), HIDDEN_GRACE_MS);
  }
}
