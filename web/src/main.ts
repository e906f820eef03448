// The "My library" page: sign in with a pasted token, then now playing, stats, top tracks, liked
// tracks and history, kept live by one WatchLibrary stream.
import "./style.css";

import { createLibraryClient } from "./client.ts";
import { byId, show } from "./dom.ts";
import { describeError } from "./errors.ts";
import { clearNotice, notice } from "./notice.ts";
import { Session } from "./session.ts";
import { LiveLibrary } from "./live/library.ts";
import { readToken } from "./token.ts";
import { HistoryView } from "./views/history.ts";
import { LikesView } from "./views/likes.ts";
import { StatsView } from "./views/stats.ts";
import { TopTracksView } from "./views/top.ts";

// Same origin when the service serves the page (`--web-root`) or Vite proxies to it.
const SERVICE_URL: string = import.meta.env.VITE_LIBRARY_URL || window.location.origin;
// Kept for the tab only, so a reload does not ask again; closing the tab forgets it.
const TOKEN_KEY = "audiohm.library.token";

let session: Session | undefined;
let history: HistoryView | undefined;
let likes: LikesView | undefined;
let live: LiveLibrary | undefined;

function signOut(message?: string) {
  session?.end();
  live?.stop();
  session = history = likes = live = undefined;
  sessionStorage.removeItem(TOKEN_KEY);
  // The next person at this browser must not find the last listener's library in the page.
  for (const id of [
    "stats-cards",
    "activity-buckets",
    "activity-chart",
    "heatmap",
    "streaks",
    "top-tracks",
    "sources",
    "top-periods",
    "top-period-tracks",
    "likes",
    "history",
  ]) {
    byId(id).replaceChildren();
  }
  for (const id of ["account-sub", "account-until", "top-period-summary", "likes-total", "history-status"]) {
    byId(id).textContent = "";
  }
  byId<HTMLTextAreaElement>("token").value = "";
  show(byId("library"), false);
  show(byId("account"), false);
  byId("account").classList.remove("flex");
  show(byId("sign-in"), true);
  if (message) notice("error", message);
  else clearNotice();
}

function report(error: unknown) {
  const problem = describeError(error);
  if (problem.signOut) signOut(problem.message);
  else notice("error", problem.message, problem.transient);
}

async function signIn(token: string): Promise<boolean> {
  const claims = readToken(token);
  if (typeof claims === "string") {
    notice("error", claims);
    return false;
  }
  clearNotice();
  session?.end();
  live?.stop();
  live = undefined;
  const current = new Session(createLibraryClient(SERVICE_URL, token.trim()), report);
  session = current;
  // The first call tells whether the service takes the token.
  const stats = new StatsView(current);
  if (!(await stats.load())) return false;
  sessionStorage.setItem(TOKEN_KEY, token.trim());
  byId("account-sub").textContent = claims.subject;
  byId("account-until").textContent = claims.expiresAt
    ? `until ${claims.expiresAt.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" })}`
    : "";
  const account = byId("account");
  show(account, true);
  account.classList.add("flex");
  show(byId("sign-in"), false);
  show(byId("library"), true);
  likes = new LikesView(current);
  history = new HistoryView(current);
  const top = new TopTracksView(current);
  // Watching starts with the reads, so that nothing done elsewhere meanwhile is missed: a change
  // that is also in what they read is applied once.
  const watching = new LiveLibrary(current, {
    history,
    likes,
    refreshFigures: () => {
      void stats.load();
      void top.load();
    },
  });
  live = watching;
  // Liking from the page changes the liked count in the stats; its own event will too, so both go
  // through the same once-a-second refresh.
  current.onLikeChange(() => watching.refreshFigures());
  watching.start();
  await Promise.all([likes.reload(), history.reload(), top.load()]);
  return true;
}

byId<HTMLFormElement>("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = (event.currentTarget as HTMLFormElement).querySelector("button");
  if (button) button.disabled = true;
  await signIn(byId<HTMLTextAreaElement>("token").value);
  if (button) button.disabled = false;
});

byId("sign-out").addEventListener("click", () => signOut());
byId("history-more").addEventListener("click", () => void history?.loadMore());
byId("history-reload").addEventListener("click", () => void history?.reload());
byId("likes-more").addEventListener("click", () => void likes?.loadMore());

byId<HTMLFormElement>("like-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const track = byId<HTMLInputElement>("like-track");
  const notes = byId<HTMLInputElement>("like-notes");
  if (likes && (await likes.like(track.value.trim(), notes.value))) {
    track.value = "";
    notes.value = "";
  }
});

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) {
  byId<HTMLTextAreaElement>("token").value = saved;
  void signIn(saved);
}
