// The page's one WatchLibrary stream: opened after sign-in, resumed from the last cursor after
// every failure (with backoff), started over when the cursor has expired, closed on sign-out and
// while the page is put away.
import type { LibraryEvent } from "../gen/audiohm/library/v1/library_pb.ts";
import type { LibraryClient } from "../client.ts";
import { backoffDelay, retryAfter } from "./backoff.ts";

/** `connecting`: the first attempt; `live`: events arrive; `reconnecting`: waiting to try again;
 * `offline`: stopped (signed out, paused, or the service has no live updates). */
export type Link = "connecting" | "live" | "reconnecting" | "offline";

export interface FeedHandlers {
  /** Every message, in order, `watching` and heartbeats included. */
  event(event: LibraryEvent, receivedAtMs: number): void;
  /** The stream is live again without a cursor after events were lost: read everything again. */
  resync(): void;
  link(link: Link): void;
  /** A failure the listener must hear about (a rejected token signs them out). */
  fail(error: unknown): void;
}

export interface FeedOptions {
  /** No message (not even a heartbeat, sent every 15 s) for this long: the connection is dead. */
  silenceMs?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

export class LiveFeed {
  /** The last cursor received. */
  cursor = "";
  private running: AbortController | undefined;
  private readonly silenceMs: number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly random: () => number;

  constructor(
    private readonly client: LibraryClient,
    private readonly handlers: FeedHandlers,
    options: FeedOptions = {},
  ) {
    this.silenceMs = options.silenceMs ?? 40_000;
    this.sleep = options.sleep ?? sleep;
    this.random = options.random ?? Math.random;
  }

  get started(): boolean {
    return this.running !== undefined;
  }

  /** Opens the stream (from the last cursor, if there is one); a no-op while it is open. */
  start() {
    if (this.running) return;
    const running = new AbortController();
    this.running = running;
    void this.run(running.signal);
  }

  /** Closes the stream; `start` resumes from the cursor. */
  stop() {
    this.running?.abort();
    this.running = undefined;
    this.handlers.link("offline");
  }

  private async run(stopped: AbortSignal) {
    let failures = 0;
    let resync = false;
    this.handlers.link(this.cursor ? "reconnecting" : "connecting");
    while (!stopped.aborted) {
      const attempt = new AbortController();
      const signal = AbortSignal.any([stopped, attempt.signal]);
      let silence: ReturnType<typeof setTimeout> | undefined;
      const listen = () => {
        clearTimeout(silence);
        silence = setTimeout(() => attempt.abort(), this.silenceMs);
      };
      let error: unknown;
      try {
        listen();
        for await (const event of this.client.watchLibrary({ after: this.cursor }, { signal })) {
          listen();
          if (event.cursor) this.cursor = event.cursor;
          if (event.event.case === "watching") {
            failures = 0;
            this.handlers.link("live");
            if (resync) {
              resync = false;
              this.handlers.resync();
            }
          }
          this.handlers.event(event, Date.now());
        }
      } catch (caught) {
        error = caught;
      } finally {
        clearTimeout(silence);
      }
      if (stopped.aborted) return;
      // A silent connection, a failure, or a stream the service ended without a status.
      const plan = attempt.signal.aborted || error === undefined
        ? retryAfter(new Error("the stream ended"), failures, this.random())
        : retryAfter(error, failures, this.random());
      if (plan.kind === "stop") {
        this.running = undefined;
        this.handlers.link("offline");
        if (plan.report) this.handlers.fail(error);
        return;
      }
      let delayMs = plan.delayMs;
      if (plan.fromStart && this.cursor !== "") {
        // Lost events: watch from now, at once, and read everything again once live.
        this.cursor = "";
        resync = true;
      } else {
        // (An expiry without a cursor would repeat at once: back off as for any failure.)
        if (plan.fromStart) delayMs = backoffDelay(failures, this.random());
        failures += 1;
      }
      this.handlers.link("reconnecting");
      await this.sleep(delayMs, stopped);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
