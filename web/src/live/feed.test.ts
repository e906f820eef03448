import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { expect, test } from "vitest";

import type { LibraryClient } from "../client.ts";
import { type LibraryEvent, LibraryEventSchema } from "../gen/audiohm/library/v1/library_pb.ts";
import { type Link, LiveFeed } from "./feed.ts";

const watching = (cursor: string) => create(LibraryEventSchema, { cursor, event: { case: "watching", value: {} } });
const deleted = (cursor: string) =>
  create(LibraryEventSchema, { cursor, event: { case: "playDeleted", value: { playId: cursor } } });

/** One scripted stream per call: its events, then how it ends (an error, or never). */
type Script = { events: LibraryEvent[]; end: ConnectError | "hang" };

function fakeClient(scripts: Script[]) {
  const requests: string[] = [];
  const client = {
    watchLibrary({ after }: { after: string }, { signal }: { signal: AbortSignal }) {
      requests.push(after);
      const script = scripts.shift() ?? { events: [], end: "hang" as const };
      return (async function* () {
        for (const event of script.events) yield event;
        if (script.end !== "hang") throw script.end;
        await new Promise((_, reject) => signal.addEventListener("abort", () => reject(new ConnectError("aborted", Code.Canceled))));
      })();
    },
  } as unknown as LibraryClient;
  return { client, requests };
}

function run(scripts: Script[]) {
  const { client, requests } = fakeClient(scripts);
  const seen: string[] = [];
  const links: Link[] = [];
  const delays: number[] = [];
  const failures: unknown[] = [];
  let resyncs = 0;
  const feed = new LiveFeed(
    client,
    {
      event: (e) => seen.push(`${e.event.case}:${e.cursor}`),
      resync: () => (resyncs += 1),
      link: (link) => links.push(link),
      fail: (error) => failures.push(error),
    },
    { sleep: async (ms) => void delays.push(ms), random: () => 0.5 },
  );
  feed.start();
  return { feed, requests, seen, links, delays, failures, resyncs: () => resyncs };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

test("resumes from the last cursor after the stream ends, backing off while it keeps failing", async () => {
  const unavailable = new ConnectError("shutting down", Code.Unavailable);
  const { feed, requests, seen, links, delays } = run([
    { events: [watching("c0"), deleted("c1"), deleted("c2")], end: unavailable },
    { events: [], end: unavailable },
    { events: [], end: unavailable },
    { events: [watching("c2"), deleted("c3")], end: "hang" },
  ]);
  await settle();
  expect(requests).toEqual(["", "c2", "c2", "c2"]);
  expect(seen).toEqual(["watching:c0", "playDeleted:c1", "playDeleted:c2", "watching:c2", "playDeleted:c3"]);
  expect(delays).toEqual([500, 1000, 2000]);
  expect(links).toEqual(["connecting", "live", "reconnecting", "reconnecting", "reconnecting", "live"]);
  expect(feed.cursor).toBe("c3");
  feed.stop();
  expect(links.at(-1)).toBe("offline");
});

test("an expired cursor starts over from now and reads everything again once live", async () => {
  const { feed, requests, delays, resyncs } = run([
    { events: [watching("c0"), deleted("c1")], end: new ConnectError("gone", Code.Unavailable) },
    { events: [], end: new ConnectError("events expired", Code.FailedPrecondition) },
    { events: [watching("c7")], end: "hang" },
  ]);
  await settle();
  expect(requests).toEqual(["", "c1", ""]);
  expect(delays).toEqual([500, 0]);
  expect(resyncs()).toBe(1);
  feed.stop();
});

test("a rejected token stops the stream and is reported; so is nothing else", async () => {
  const rejected = new ConnectError("token expired", Code.Unauthenticated);
  const { requests, links, failures, feed } = run([{ events: [], end: rejected }]);
  await settle();
  expect(requests).toEqual([""]);
  expect(failures).toEqual([rejected]);
  expect(links).toEqual(["connecting", "offline"]);
  expect(feed.started).toBe(false);
});

test("stopping closes the open stream, and starting again resumes from the cursor", async () => {
  const { feed, requests, seen } = run([
    { events: [watching("c0"), deleted("c1")], end: "hang" },
    { events: [watching("c1"), deleted("c2")], end: "hang" },
  ]);
  await settle();
  feed.stop();
  await settle();
  feed.start();
  await settle();
  expect(requests).toEqual(["", "c1"]);
  expect(seen).toEqual(["watching:c0", "playDeleted:c1", "watching:c1", "playDeleted:c2"]);
  feed.stop();
});

test("a stream silent for longer than the heartbeats allow is given up and resumed", async () => {
  const { client, requests } = fakeClient([
    { events: [watching("c0")], end: "hang" },
    { events: [watching("c0")], end: "hang" },
  ]);
  const feed = new LiveFeed(
    client,
    { event: () => {}, resync: () => {}, link: () => {}, fail: () => {} },
    { silenceMs: 30, sleep: async () => {}, random: () => 0.5 },
  );
  feed.start();
  await new Promise((resolve) => setTimeout(resolve, 45));
  expect(requests).toEqual(["", "c0"]);
  feed.stop();
});
