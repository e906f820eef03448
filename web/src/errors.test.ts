import { create, toBinary } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, test } from "vitest";

import { describeError } from "./errors.ts";
import { BadRequestSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.ts";

// Details arrive as they do off the wire: type name and encoded bytes.
function withDetails(code: Code, message: string, details: ConnectError["details"] = [], headers?: HeadersInit) {
  const err = new ConnectError(message, code, headers);
  err.details.push(...details);
  return err;
}

describe("errors in plain words", () => {
  test("an expired token sends the listener back to sign in", () => {
    const problem = describeError(new ConnectError("token expired", Code.Unauthenticated));
    expect(problem).toEqual({ message: "Your sign-in has expired. Paste a fresh token to continue.", signOut: true });
  });

  test("a token that is not accepted says why and signs out", () => {
    const problem = describeError(new ConnectError("invalid signature", Code.Unauthenticated));
    expect(problem.signOut).toBe(true);
    expect(problem.message).toContain("invalid signature");
  });

  test("rate limiting says when to try again, from RetryInfo", () => {
    const retry = create(RetryInfoSchema, { retryDelay: create(DurationSchema, { seconds: 14n, nanos: 200_000_000 }) });
    const err = withDetails(Code.ResourceExhausted, "rate limit of 4 calls per minute reached", [
      { desc: RetryInfoSchema, value: retry },
    ]);
    expect(describeError(err).message).toBe("You are doing that too often. Please try again in 15 seconds.");
  });

  test("rate limiting falls back to the ratelimit-reset metadata", () => {
    const err = withDetails(Code.ResourceExhausted, "too many", [], { "ratelimit-reset": "1" });
    expect(describeError(err).message).toBe("You are doing that too often. Please try again in 1 second.");
  });

  test("bad input names the field by its label, from BadRequest", () => {
    const bad = create(BadRequestSchema, {
      fieldViolations: [
        { field: "track_id", description: "track id must be a UUID" },
        { field: "notes", description: "notes must be at most 1000 characters" },
        { field: "track_ids[3]", description: "must not be the nil UUID" },
      ],
    });
    const err = withDetails(Code.InvalidArgument, "invalid fields: track_id, notes", [
      { type: "google.rpc.BadRequest", value: toBinary(BadRequestSchema, bad) },
    ]);
    expect(describeError(err)).toEqual({
      message: "Please check your input: Track ID must be a UUID. Notes must be at most 1000 characters. Track ID must not be the nil UUID.",
      signOut: false,
    });
  });

  test("an outage and an unknown failure are told apart, without internals", () => {
    expect(describeError(new ConnectError("db down", Code.Unavailable))).toEqual({
      message: "The library service cannot be reached right now. Please try again in a moment.",
      signOut: false,
      transient: true,
    });
    // A server that is not there at all: fetch fails before any status.
    const refused = ConnectError.from(new TypeError("Failed to fetch"));
    expect(describeError(refused)).toEqual(describeError(new ConnectError("db down", Code.Unavailable)));
    const internal = describeError(new ConnectError("relation plays does not exist", Code.Internal));
    expect(internal.message).not.toContain("relation");
  });
});
