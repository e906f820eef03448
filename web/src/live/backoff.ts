// When and how the live stream reconnects after it ended: what each failure means for the page,
// and how long to wait before the next attempt.
import { Code, ConnectError } from "@connectrpc/connect";

import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.ts";

/** The first wait after a failure; each failure in a row doubles it, up to `MAX_DELAY_MS`. */
export const FIRST_DELAY_MS = 500;
export const MAX_DELAY_MS = 5000;

/** The wait before attempt `attempt` (0 for the first retry after a failure), with up to ±20 %
 * of jitter so that the pages of a restarted server do not all come back in the same instant.
 * `random` is in [0, 1). */
export function backoffDelay(attempt: number, random: number = Math.random()): number {
  const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.max(0, attempt));
  const jittered = base * (0.8 + 0.4 * random);
  return Math.round(Math.min(MAX_DELAY_MS, jittered));
}

export type Retry =
  /** Watch again after `delayMs`; `fromStart`: without a cursor (the page's data must be loaded
   * again, because what was missed can no longer be replayed). */
  | { kind: "retry"; delayMs: number; fromStart: boolean }
  /** Stop: the token is no good, or the call itself was refused; `report` it to the listener. */
  | { kind: "stop"; report: boolean };

/** What to do after the stream failed with `error`, on failure number `attempt` in a row. */
export function retryAfter(error: unknown, attempt: number, random?: number): Retry {
  const err = ConnectError.from(error);
  const backoff = backoffDelay(attempt, random);
  switch (err.code) {
    case Code.FailedPrecondition: {
      // The cursor is older than what the service keeps (reason EVENTS_EXPIRED, the only
      // precondition of WatchLibrary): start over from now, at once.
      const reason = err.findDetails(ErrorInfoSchema)[0]?.reason;
      return reason === undefined || reason === "EVENTS_EXPIRED"
        ? { kind: "retry", delayMs: 0, fromStart: true }
        : { kind: "stop", report: true };
    }
    case Code.ResourceExhausted:
      // Too many streams, or too many started: never sooner than the service says.
      return { kind: "retry", delayMs: Math.max(backoff, retryInfoMs(err) ?? 0), fromStart: false };
    case Code.Unauthenticated:
    case Code.PermissionDenied:
    case Code.InvalidArgument:
      return { kind: "stop", report: true };
    case Code.Unimplemented:
      // A service that predates live updates: the page works without them.
      return { kind: "stop", report: false };
    default:
      // UNAVAILABLE (shutdown, a slow reader, a dropped connection) and anything unexpected.
      return { kind: "retry", delayMs: Math.max(backoff, retryInfoMs(err) ?? 0), fromStart: false };
  }
}

function retryInfoMs(err: ConnectError): number | undefined {
  const delay = err.findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay ? Number(delay.seconds) * 1000 + Math.ceil(delay.nanos / 1e6) : undefined;
}
