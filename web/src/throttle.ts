// Runs a refresh at most once per interval however many changes ask for it: the first request
// runs at once, those that come within the interval run once, together, when it ends.

export interface Throttled {
  (): void;
  /** Forgets a pending run (the page signed out). */
  cancel(): void;
}

export function throttle(run: () => void, intervalMs: number, now: () => number = Date.now): Throttled {
  let last = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const fire = () => {
    timer = undefined;
    last = now();
    run();
  };
  const request = () => {
    if (timer !== undefined) return;
    const wait = last + intervalMs - now();
    if (wait <= 0) fire();
    else timer = setTimeout(fire, wait);
  };
  request.cancel = () => {
    clearTimeout(timer);
    timer = undefined;
  };
  return request;
}
