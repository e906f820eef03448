// One signed-in listener: the client, what is known about which tracks they like, and where a
// failed call is reported.
import type { LibraryClient } from "./client.ts";

type LikeListener = (trackId: string, liked: boolean) => void;

export class Session {
  readonly liked = new Map<string, boolean>();
  private readonly likeListeners = new Set<LikeListener>();
  private readonly ended = new AbortController();

  constructor(
    readonly client: LibraryClient,
    /** Shows the failure in plain words (and signs out when the token is no good). */
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Passed to every call, so that signing out cancels what is still in flight: nothing a
   * listener asked for lands on the page after they signed out. */
  get signal(): AbortSignal {
    return this.ended.signal;
  }

  get active(): boolean {
    return !this.ended.signal.aborted;
  }

  end() {
    this.ended.abort();
  }

  report(error: unknown) {
    if (this.active) this.onError(error);
  }

  onLikeChange(listener: LikeListener) {
    this.likeListeners.add(listener);
  }

  /** Likes or unlikes a track; false when the call failed (already reported). */
  async setLiked(trackId: string, liked: boolean): Promise<boolean> {
    try {
      const options = { signal: this.signal };
      if (liked) await this.client.likeTrack({ trackId }, options);
      else await this.client.unlikeTrack({ trackId }, options);
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
