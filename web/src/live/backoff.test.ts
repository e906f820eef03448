import { create, toBinary } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, test } from "vitest";

import { ErrorInfoSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.ts";
import { backoffDelay, retryAfter } from "./backoff.ts";

const failure = (code: Code, details: ConnectError["details"] = []) => {
  const error = new ConnectError("failed", code);
  error.details.push(...details);
  return error;
};

describe("backoff", () => {
  test("starts at half a second and doubles up to five", () => {
    // random 0.5: no jitter.
    expect([0, 1, 2, 3, 4, 5, 20].map((a) => backoffDelay(a, 0.5))).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  test("jitters by a fifth either way, never past the cap", () => {
    expect(backoffDelay(0, 0)).toBe(400);
    expect(backoffDelay(0, 0.999_999)).toBe(600);
    expect(backoffDelay(10, 0.999_999)).toBe(5000);
    expect(backoffDelay(10, 0)).toBe(4000);
  });
});

describe("what a failed stream means", () => {
  test("a server shutting down or a slow reader: reconnect from the cursor after the backoff", () => {
    expect(retryAfter(failure(Code.Unavailable), 0, 0.5)).toEqual({ kind: "retry", delayMs: 500, fromStart: false });
    expect(retryAfter(failure(Code.Unavailable), 3, 0.5)).toEqual({ kind: "retry", delayMs: 4000, fromStart: false });
    // A dropped connection is no status at all.
    expect(retryAfter(new TypeError("Failed to fetch"), 1, 0.5)).toEqual({ kind: "retry", delayMs: 1000, fromStart: false });
  });

  test("an expired cursor: start over from now, at once", () => {
    const expired = failure(Code.FailedPrecondition, [
      { desc: ErrorInfoSchema, value: { reason: "EVENTS_EXPIRED", domain: "library.audiohm.com" } },
    ]);
    expect(retryAfter(expired, 2, 0.5)).toEqual({ kind: "retry", delayMs: 0, fromStart: true });
    // Also as the bytes arrive from the service.
    const wire = failure(Code.FailedPrecondition, [
      { type: "google.rpc.ErrorInfo", value: toBinary(ErrorInfoSchema, create(ErrorInfoSchema, { reason: "EVENTS_EXPIRED" })) },
    ]);
    expect(retryAfter(wire, 0, 0.5)).toEqual({ kind: "retry", delayMs: 0, fromStart: true });
  });

  test("a quota: never sooner than RetryInfo says", () => {
    const limited = failure(Code.ResourceExhausted, [
      { desc: RetryInfoSchema, value: { retryDelay: create(DurationSchema, { seconds: 7n, nanos: 250_000_000 }) } },
    ]);
    expect(retryAfter(limited, 0, 0.5)).toEqual({ kind: "retry", delayMs: 7250, fromStart: false });
    expect(retryAfter(failure(Code.ResourceExhausted), 1, 0.5)).toEqual({ kind: "retry", delayMs: 1000, fromStart: false });
  });

  test("a rejected token or call stops and is reported; a service without live updates stops quietly", () => {
    for (const code of [Code.Unauthenticated, Code.PermissionDenied, Code.InvalidArgument]) {
      expect(retryAfter(failure(code), 0)).toEqual({ kind: "stop", report: true });
    }
    expect(retryAfter(failure(Code.Unimplemented), 0)).toEqual({ kind: "stop", report: false });
  });
});
