import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, test } from "vitest";

import {
  LibraryEventSchema,
  NowPlayingSchema,
  PlaybackState,
  PlaySchema,
} from "../gen/audiohm/library/v1/library_pb.ts";
import { current, initialState, isOver, mergeSnapshot, positionAt, reduce, snapshotRequested } from "./state.ts";

const T0 = Date.UTC(2026, 11, 6, 20, 0, 0);
type Event = MessageInitShape<typeof LibraryEventSchema>;
type Init = MessageInitShape<typeof NowPlayingSchema>;
const event = (init: Event) => create(LibraryEventSchema, init);
const playback = (init: Init) =>
  create(NowPlayingSchema, { deviceId: "phone", playbackId: "pb-1", trackId: "t1", state: PlaybackState.PLAYING, ...init });

describe("the live reducer", () => {
  test("keeps the last cursor, and reads the service's clock from watching and heartbeats", () => {
    let { state, effects } = reduce(
      initialState,
      event({ cursor: "c1", occurredAt: timestampFromMs(T0 + 2000), event: { case: "watching", value: {} } }),
      T0,
    );
    expect(effects).toEqual([]);
    expect(state.cursor).toBe("c1");
    expect(state.clockOffsetMs).toBe(2000);
    ({ state } = reduce(state, event({ cursor: "", event: { case: "heartbeat", value: {} } }), T0 + 5000));
    // No cursor, no time: both kept.
    expect([state.cursor, state.clockOffsetMs]).toEqual(["c1", 2000]);
  });

  test("turns each change into what the views must do", () => {
    const play = create(PlaySchema, { id: "p1", trackId: "t1" });
    const cases: [Event["event"], string[]][] = [
      [{ case: "playRecorded", value: play }, ["play-recorded", "stats-changed"]],
      [{ case: "playDeleted", value: { playId: "p1" } }, ["play-deleted", "stats-changed"]],
      [{ case: "historyCleared", value: { deletedCount: 3n } }, ["history-changed", "stats-changed"]],
      [{ case: "historyImported", value: { importedCount: 9n } }, ["history-changed", "stats-changed"]],
      [{ case: "trackLiked", value: { trackId: "t1", notes: "hi" } }, ["liked", "stats-changed"]],
      [{ case: "trackUnliked", value: { trackId: "t1" } }, ["unliked", "stats-changed"]],
      [{ case: undefined }, []],
    ];
    for (const [change, kinds] of cases) {
      const { state, effects } = reduce(initialState, event({ cursor: "c9", event: change }), T0);
      expect(effects.map((e) => e.kind)).toEqual(kinds);
      expect(state.cursor).toBe("c9");
    }
    const { effects } = reduce(initialState, event({ event: { case: "playDeleted", value: { playId: "p1" } } }), T0);
    expect(effects[0]).toEqual({ kind: "play-deleted", playId: "p1" });
  });

  test("a device's playback starts, changes and ends with its events", () => {
    const started = reduce(
      initialState,
      event({
        cursor: "c1",
        occurredAt: timestampFromMs(T0),
        event: { case: "nowPlayingChanged", value: { deviceId: "phone", playback: playback({ positionSeconds: 10 }) } },
      }),
      T0 + 300,
    ).state;
    expect([...started.nowPlaying.keys()]).toEqual(["phone"]);
    // Anchored when the change was made, not when it arrived.
    expect(started.nowPlaying.get("phone")?.anchorMs).toBe(T0);
    expect(positionAt(started.nowPlaying.get("phone")!, T0 + 5000)).toBe(15);

    const ended = reduce(
      started,
      event({ cursor: "c2", event: { case: "nowPlayingChanged", value: { deviceId: "phone" } } }),
      T0 + 9000,
    ).state;
    expect(ended.nowPlaying.size).toBe(0);
    expect(started.nowPlaying.size).toBe(1);
  });

  test("a replayed event is placed on this browser's clock by the service's offset", () => {
    const watching = reduce(
      initialState,
      event({ occurredAt: timestampFromMs(T0 + 60_000), event: { case: "watching", value: {} } }),
      T0,
    ).state;
    const { state } = reduce(
      watching,
      event({
        occurredAt: timestampFromMs(T0 + 60_000 - 20_000),
        event: { case: "nowPlayingChanged", value: { deviceId: "car", playback: playback({ deviceId: "car" }) } },
      }),
      T0 + 10,
    );
    // Made 20 s before the stream started, by the service's clock.
    expect(state.nowPlaying.get("car")?.anchorMs).toBe(T0 - 20_000);
    expect(positionAt(state.nowPlaying.get("car")!, T0)).toBe(20);
  });

  test("GetNowPlaying's answer does not undo events that arrived while it was on its way", () => {
    let state = snapshotRequested(initialState);
    state = reduce(
      state,
      event({ event: { case: "nowPlayingChanged", value: { deviceId: "phone" } } }),
      T0,
    ).state;
    state = mergeSnapshot(
      state,
      [playback({ deviceId: "phone", positionSeconds: 50 }), playback({ deviceId: "laptop", positionSeconds: 5 })],
      T0 + 100,
    );
    // The phone's playback ended after the answer was made.
    expect([...state.nowPlaying.keys()]).toEqual(["laptop"]);
    expect(state.nowPlaying.get("laptop")?.anchorMs).toBe(T0 + 100);
    // The next call takes everything it says.
    state = mergeSnapshot(snapshotRequested(state), [playback({ deviceId: "phone" })], T0 + 200);
    expect([...state.nowPlaying.keys()]).toEqual(["phone"]);
  });
});

describe("the position of a playback", () => {
  const at = (init: Init) => ({ playback: playback(init), anchorMs: T0 });

  test("advances while playing, stands still while paused, never passes the duration", () => {
    const playing = at({ positionSeconds: 30, trackDurationSeconds: 200 });
    expect(positionAt(playing, T0)).toBe(30);
    expect(positionAt(playing, T0 + 1500)).toBe(31.5);
    expect(positionAt(playing, T0 + 500_000)).toBe(200);
    // A clock a little behind the anchor does not run it backwards.
    expect(positionAt(playing, T0 - 800)).toBe(30);
    const paused = at({ positionSeconds: 30, trackDurationSeconds: 200, state: PlaybackState.PAUSED });
    expect(positionAt(paused, T0 + 60_000)).toBe(30);
    // Without a duration, it just goes on.
    expect(positionAt(at({ positionSeconds: 0 }), T0 + 900_000)).toBe(900);
  });

  test("is over 30 s after the track would have ended, or 10 minutes after the last report without a duration", () => {
    const playing = at({ positionSeconds: 170, trackDurationSeconds: 200 });
    expect(isOver(playing, T0 + 60_000)).toBe(false);
    expect(isOver(playing, T0 + 60_001)).toBe(true);
    const paused = at({ positionSeconds: 170, trackDurationSeconds: 200, state: PlaybackState.PAUSED });
    expect(isOver(paused, T0 + 3_600_000)).toBe(false);
    const unknown = at({ positionSeconds: 10, reportedAt: timestampFromMs(T0 - 1000) });
    expect(isOver(unknown, T0 + 598_000)).toBe(false);
    expect(isOver(unknown, T0 + 600_000)).toBe(true);
    // The service's clock 5 s ahead: its reported_at is 5 s earlier on this browser's.
    expect(isOver(unknown, T0 + 595_000, 5000)).toBe(true);
  });

  test("what is shown: the playbacks not over, by device", () => {
    let state = mergeSnapshot(
      snapshotRequested(initialState),
      [
        playback({ deviceId: "tablet", trackDurationSeconds: 100, positionSeconds: 99 }),
        playback({ deviceId: "laptop", reportedAt: timestampFromMs(T0) }),
        playback({ deviceId: "car", reportedAt: timestampFromMs(T0) }),
      ],
      T0,
    );
    expect(current(state, T0).map(([device]) => device)).toEqual(["car", "laptop", "tablet"]);
    expect(current(state, T0 + 40_000).map(([device]) => device)).toEqual(["car", "laptop"]);
    state = reduce(state, event({ event: { case: "nowPlayingChanged", value: { deviceId: "car" } } }), T0).state;
    expect(current(state, T0).map(([device]) => device)).toEqual(["laptop", "tablet"]);
  });
});
