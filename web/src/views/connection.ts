// The small "Live" / "Reconnecting…" indicator beside the account: whether changes made
// elsewhere reach the page right now.
import { byId, show } from "../dom.ts";
import type { Link } from "../live/feed.ts";

const LOOKS: Record<Link, { text: string; dot: string; title: string }> = {
  connecting: { text: "Connecting…", dot: "bg-amber-400", title: "Connecting to live updates" },
  live: { text: "Live", dot: "bg-emerald-400", title: "Changes from your other devices appear as they happen" },
  reconnecting: {
    text: "Reconnecting…",
    dot: "bg-amber-400 animate-pulse",
    title: "The connection was lost; what happens meanwhile appears once it is back",
  },
  offline: { text: "Not live", dot: "bg-slate-500", title: "Reload to see changes made elsewhere" },
};

export function showLink(link: Link | undefined) {
  const box = byId("live");
  show(box, link !== undefined);
  box.classList.toggle("inline-flex", link !== undefined);
  if (!link) return;
  const look = LOOKS[link];
  box.dataset.state = link;
  box.title = look.title;
  byId("live-dot").className = `inline-block h-2 w-2 rounded-full ${look.dot}`;
  byId("live-text").textContent = look.text;
}
