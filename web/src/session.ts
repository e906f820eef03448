// One signed-in listener: the client, what is known about which tracks they like, and where a
// failed call is reported.
import type { LibraryClient } from "./client.ts";

type LikeListener = (trackId: string, liked: boolean) => void;

export class Session {
  readonly liked = new Map<string, boolean>();
  private readonly likeListeners = new Set<LikeListener>();

  constructor(
    readonly client: LibraryClient,
    /** Shows the failure in plain words (and signs out when the token is no good). */
    readonly report: (error: unknown) => void,
  ) {}

  onLikeChange(listener: LikeListener) {
    this.likeListeners.add(listener);
  }

  /** Likes or unlikes a track; false when the call failed (already reported). */
  async setLiked(trackId: string, liked: boolean): Promise<boolean> {
    try {
      if (liked) await this.client.likeTrack({ trackId });
      else await this.client.unlikeTrack({ trackId });
    } catch (error) {
      this.report(error);
      return false;
    }
    this.announce(trackId, liked);
    return true;
  }

  /** Tells every view that a track's like changed. `trackId` in the service's canonical form. */
  announce(trackId: string, liked: boolean) {
    this.liked.set(trackId, liked);
    for (const listener of this.likeListeners) listener(trackId, liked);
  }
}
