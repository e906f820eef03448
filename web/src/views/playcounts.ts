// The play count beside a track in a list: one GetTrackPlayCounts call per page of rows.
import type { TrackPlayCount } from "../gen/audiohm/library/v1/library_pb.ts";
import { el } from "../dom.ts";
import { playCountDetails, plays } from "../format.ts";
import type { Session } from "../session.ts";

/** Counts for the distinct tracks of one page (a page is at most 50 rows, under the call's limit
 * of 500); undefined when the call failed (already reported). */
export async function fetchPlayCounts(session: Session, trackIds: string[]): Promise<TrackPlayCount[] | undefined> {
  const unique = [...new Set(trackIds)];
  if (unique.length === 0) return [];
  try {
    const { tracks } = await session.client.getTrackPlayCounts({ trackIds: unique }, { signal: session.signal });
    return tracks;
  } catch (error) {
    session.report(error);
    return undefined;
  }
}

/** A placeholder until the page's counts arrive. */
export function playCountBadge(trackId: string): HTMLSpanElement {
  return el("span", { class: "whitespace-nowrap text-xs text-slate-500", "data-play-count": trackId, text: "…" });
}

/** Fills the badges of `trackIds` under `root`, or marks them unknown when the call failed. The
 * number is the plays that count, as the top tracks rank them; the tooltip gives the rest. */
export function paintPlayCounts(root: ParentNode, trackIds: string[], counts: TrackPlayCount[] | undefined) {
  const byTrack = new Map(counts?.map((c) => [c.trackId, c]));
  for (const trackId of new Set(trackIds)) {
    const c = byTrack.get(trackId);
    for (const badge of root.querySelectorAll<HTMLElement>(`[data-play-count="${CSS.escape(trackId)}"]`)) {
      if (!c) {
        badge.textContent = "–";
        continue;
      }
      badge.textContent = plays(c.countedPlays);
      badge.title = playCountDetails(c);
      badge.dataset.counted = String(c.countedPlays);
      badge.dataset.plays = String(c.plays);
      badge.classList.replace("text-slate-500", "text-slate-300");
    }
  }
}
