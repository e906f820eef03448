// The one message line at the top of the page: errors stay until the next action, confirmations
// fade after a few seconds.
import { byId, show } from "./dom.ts";

const STYLES = {
  error: "border-rose-700 bg-rose-950 text-rose-100",
  info: "border-emerald-700 bg-emerald-950 text-emerald-100",
} as const;

let timer: ReturnType<typeof setTimeout> | undefined;

/** `transient`: the service could not be reached; `clearTransientNotice` takes it away once it is
 * back. */
export function notice(kind: keyof typeof STYLES, message: string, transient = false) {
  const box = byId("notice");
  clearTimeout(timer);
  box.className = `mb-6 rounded-lg border px-4 py-3 text-sm ${STYLES[kind]}`;
  box.dataset.kind = kind;
  box.dataset.transient = String(transient);
  box.textContent = message;
  if (kind === "info") timer = setTimeout(clearNotice, 5000);
}

export function clearTransientNotice() {
  if (byId("notice").dataset.transient === "true") clearNotice();
}

export function clearNotice() {
  const box = byId("notice");
  box.textContent = "";
  show(box, false);
}
