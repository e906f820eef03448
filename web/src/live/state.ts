// What the live stream's events mean for the page, as a pure reducer: the cursor to resume from,
// the service's clock, the devices' playbacks, and what the other views must do.
import { timestampMs } from "@bufbuild/protobuf/wkt";

import {
  type LibraryEvent,
  type LikedTrack,
  type NowPlaying,
  type Play,
  PlaybackState,
} from "../gen/audiohm/library/v1/library_pb.ts";

/** One device's playback, and when (on this browser's clock) its `positionSeconds` held. */
export interface Playback {
  readonly playback: NowPlaying;
  readonly anchorMs: number;
}

export interface LiveState {
  /** The last position received: the stream resumes after it. Empty: from now. */
  readonly cursor: string;
  /** The service's clock minus this browser's, as the last `watching` or heartbeat showed it. */
  readonly clockOffsetMs: number;
  /** By device. */
  readonly nowPlaying: ReadonlyMap<string, Playback>;
  /** Devices changed by an event since the last `GetNowPlaying` was sent (see `mergeSnapshot`). */
  readonly touched: ReadonlySet<string>;
}

/** What a view must do about an event. */
export type Effect =
  | { kind: "play-recorded"; play: Play }
  | { kind: "play-deleted"; playId: string }
  /** Plays were cleared or imported: the history must be read again. */
  | { kind: "history-changed" }
  | { kind: "liked"; like: LikedTrack }
  | { kind: "unliked"; trackId: string }
  /** The figures drawn from the history or the likes changed. */
  | { kind: "stats-changed" };

export const initialState: LiveState = {
  cursor: "",
  clockOffsetMs: 0,
  nowPlaying: new Map(),
  touched: new Set(),
};

/** Applies one event received at `receivedAtMs` (this browser's clock). */
export function reduce(state: LiveState, event: LibraryEvent, receivedAtMs: number): { state: LiveState; effects: Effect[] } {
  const cursor = event.cursor || state.cursor;
  const occurredMs = event.occurredAt ? timestampMs(event.occurredAt) : undefined;
  const next: LiveState = { ...state, cursor };
  const { value, case: kind } = event.event;
  switch (kind) {
    case "watching":
    case "heartbeat":
      // Sent as they are made: the best reading of the service's clock.
      return {
        state: occurredMs === undefined ? next : { ...next, clockOffsetMs: occurredMs - receivedAtMs },
        effects: [],
      };
    case "playRecorded":
      return { state: next, effects: [{ kind: "play-recorded", play: value }, { kind: "stats-changed" }] };
    case "playDeleted":
      return { state: next, effects: [{ kind: "play-deleted", playId: value.playId }, { kind: "stats-changed" }] };
    case "historyCleared":
    case "historyImported":
      return { state: next, effects: [{ kind: "history-changed" }, { kind: "stats-changed" }] };
    case "trackLiked":
      return { state: next, effects: [{ kind: "liked", like: value }, { kind: "stats-changed" }] };
    case "trackUnliked":
      return { state: next, effects: [{ kind: "unliked", trackId: value.trackId }, { kind: "stats-changed" }] };
    case "nowPlayingChanged": {
      const nowPlaying = new Map(state.nowPlaying);
      if (value.playback) {
        // The position held when the change was made, which may be a while ago for an event
        // replayed after a reconnect.
        const anchorMs = occurredMs === undefined ? receivedAtMs : occurredMs - state.clockOffsetMs;
        nowPlaying.set(value.deviceId, { playback: value.playback, anchorMs });
      } else {
        nowPlaying.delete(value.deviceId);
      }
      return { state: { ...next, nowPlaying, touched: new Set(state.touched).add(value.deviceId) }, effects: [] };
    }
    default:
      // A kind of event newer than this page: nothing to do but move the cursor.
      return { state: next, effects: [] };
  }
}

/** Marks the start of a `GetNowPlaying` call. */
export function snapshotRequested(state: LiveState): LiveState {
  return { ...state, touched: new Set() };
}

/** Takes a `GetNowPlaying` answer received at `receivedAtMs`, except for the devices whose events
 * arrived while it was on its way: those events are newer than anything it could say. */
export function mergeSnapshot(state: LiveState, playbacks: NowPlaying[], receivedAtMs: number): LiveState {
  const nowPlaying = new Map<string, Playback>();
  for (const [device, playback] of state.nowPlaying) {
    if (state.touched.has(device)) nowPlaying.set(device, playback);
  }
  for (const playback of playbacks) {
    if (!state.touched.has(playback.deviceId)) {
      nowPlaying.set(playback.deviceId, { playback, anchorMs: receivedAtMs });
    }
  }
  return { ...state, nowPlaying };
}

/** The position in seconds at `nowMs`: advancing while playing, never past the duration. */
export function positionAt({ playback, anchorMs }: Playback, nowMs: number): number {
  const position =
    playback.state === PlaybackState.PLAYING
      ? playback.positionSeconds + Math.max(0, nowMs - anchorMs) / 1000
      : playback.positionSeconds;
  return playback.trackDurationSeconds > 0 ? Math.min(position, playback.trackDurationSeconds) : position;
}

/** Gone from the service's now playing by now, as GetNowPlaying describes it: 30 s after the
 * track would have ended, or 10 minutes after the last report when the duration is unknown. */
export function isOver({ playback, anchorMs }: Playback, nowMs: number, clockOffsetMs = 0): boolean {
  const duration = playback.trackDurationSeconds;
  if (duration > 0) {
    if (playback.state !== PlaybackState.PLAYING) return false;
    return playback.positionSeconds + (nowMs - anchorMs) / 1000 > duration + 30;
  }
  const reportedMs = playback.reportedAt ? timestampMs(playback.reportedAt) - clockOffsetMs : anchorMs;
  return nowMs - reportedMs > 10 * 60 * 1000;
}

/** The playbacks to show at `nowMs`, by device name. */
export function current(state: LiveState, nowMs: number): [string, Playback][] {
  return [...state.nowPlaying]
    .filter(([, p]) => !isOver(p, nowMs, state.clockOffsetMs))
    .sort(([a], [b]) => a.localeCompare(b));
}
