// Turns a failed call into a sentence a listener can act on. The gRPC status code says what kind
// of failure it was; the google.rpc details say which field was wrong or when to retry.
import { Code, ConnectError } from "@connectrpc/connect";

import { BadRequestSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.ts";

export interface Problem {
  /** What went wrong and what to do, in plain words. */
  message: string;
  /** The token is no good any more: go back to the sign-in form. */
  signOut: boolean;
  /** The service could not be reached: over once the live stream is back. */
  transient?: true;
}

const FIELD_LABELS: Record<string, string> = {
  track_id: "Track ID",
  track_ids: "Track ID",
  notes: "Notes",
  after: "The history position",
  page_token: "The page position",
  time_zone: "Time zone",
  user_id: "Listener",
  source: "Source",
};

export function describeError(error: unknown): Problem {
  const err = ConnectError.from(error);
  const problem = (message: string, signOut = false): Problem => ({ message, signOut });
  const unreachable: Problem = {
    message: "The library service cannot be reached right now. Please try again in a moment.",
    signOut: false,
    transient: true,
  };
  // A request that never got an answer (connection refused or reset): fetch's own TypeError.
  if (err.code === Code.Unknown && err.cause instanceof TypeError) return unreachable;
  switch (err.code) {
    case Code.Unauthenticated:
      return /expired/i.test(err.rawMessage)
        ? problem("Your sign-in has expired. Paste a fresh token to continue.", true)
        : problem(
            `This token was not accepted (${err.rawMessage}). Paste the whole token again, or get a new one.`,
            true,
          );
    case Code.PermissionDenied:
      return problem(`This token is not allowed to do that (${err.rawMessage}).`);
    case Code.ResourceExhausted: {
      const seconds = retryAfterSeconds(err);
      const wait = seconds === undefined ? "in a moment" : `in ${plural(seconds, "second")}`;
      return problem(`You are doing that too often. Please try again ${wait}.`);
    }
    case Code.InvalidArgument:
      return problem(invalidInput(err));
    case Code.NotFound:
      return problem("That is no longer in your library. Reload to see the latest.");
    case Code.Unavailable:
      return unreachable;
    case Code.DeadlineExceeded:
      return problem("The library service took too long to answer. Please try again.");
    case Code.Canceled:
      return problem("The request was cancelled.");
    default:
      return problem("Something went wrong on our side. Please try again later.");
  }
}

/** "Track ID must be a UUID." for each bad field the service named. */
function invalidInput(err: ConnectError): string {
  const violations = err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
  if (violations.length === 0) {
    return `That was not accepted: ${err.rawMessage}.`;
  }
  const sentences = violations.map(({ field, description }) => {
    const name = field.replace(/\[\d+\]$/, "");
    const label = FIELD_LABELS[name] ?? field;
    return `${label} ${withoutSubject(description, name)}.`;
  });
  return `Please check your input: ${sentences.join(" ")}`;
}

/** Descriptions may start with the field's own name: "track id must be a UUID". */
function withoutSubject(description: string, name: string): string {
  for (const subject of [name, name.replace(/_/g, " ")]) {
    if (description.toLowerCase().startsWith(`${subject} `)) return description.slice(subject.length + 1);
  }
  return description;
}

/** From the RetryInfo detail, else the `ratelimit-reset` metadata every call carries. */
function retryAfterSeconds(err: ConnectError): number | undefined {
  const info = err.findDetails(RetryInfoSchema)[0];
  if (info?.retryDelay) {
    const { seconds, nanos } = info.retryDelay;
    return Math.max(1, Math.ceil(Number(seconds) + nanos / 1e9));
  }
  const reset = Number(err.metadata.get("ratelimit-reset"));
  return Number.isFinite(reset) && reset > 0 ? Math.ceil(reset) : undefined;
}

export function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? "" : "s"}`;
}
