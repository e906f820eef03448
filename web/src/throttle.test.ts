import { afterEach, beforeEach, expect, test, vi } from "vitest";

import { throttle } from "./throttle.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

test("the first request runs at once, a burst after it runs once when the second is up", () => {
  const run = vi.fn();
  const refresh = throttle(run, 1000);
  refresh();
  expect(run).toHaveBeenCalledTimes(1);
  for (let i = 0; i < 10; i++) {
    vi.advanceTimersByTime(50);
    refresh();
  }
  expect(run).toHaveBeenCalledTimes(1);
  vi.advanceTimersByTime(499);
  expect(run).toHaveBeenCalledTimes(1);
  vi.advanceTimersByTime(1);
  expect(run).toHaveBeenCalledTimes(2);
  // Quiet for longer than the interval: at once again.
  vi.advanceTimersByTime(5000);
  refresh();
  expect(run).toHaveBeenCalledTimes(3);
});

test("a cancelled refresh does not run", () => {
  const run = vi.fn();
  const refresh = throttle(run, 1000);
  refresh();
  refresh();
  refresh.cancel();
  vi.advanceTimersByTime(2000);
  expect(run).toHaveBeenCalledTimes(1);
});
