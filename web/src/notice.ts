// The one message line at the top of the page: errors stay until the next action, confirmations
// fade after a few seconds.
import { byId, show } from "./dom.ts";

const STYLES = {
  error: "border-rose-700 bg-rose-950 text-rose-100",
  info: "border-emerald-700 bg-emerald-950 text-emerald-100",
} as const;

let timer: ReturnType<typeof setTimeout> | undefined;

export function notice(kind: keyof typeof STYLES, message: string) {
  const box = byId("notice");
  clearTimeout(timer);
  box.className = `mb-6 rounded-lg border px-4 py-3 text-sm ${STYLES[kind]}`;
  box.dataset.kind = kind;
  box.textContent = message;
  if (kind === "info") timer = setTimeout(clearNotice, 5000);
}

export function clearNotice() {
  const box = byId("notice");
  box.textContent = "";
  show(box, false);
}
