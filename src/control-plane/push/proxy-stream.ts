/**
 * @module ProxyStream: one proxy's push stream, NDJSON frames on an HTTP response, with a
 * bounded buffer (at most one snapshot waits) and pings.
 */
import type { ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../../core/clock.js';
import type { MeshSnapshot } from '../../protocol/mesh/snapshot.js';
import { PING_FRAME, snapshotFrame } from './snapshot-frame.js';

/** How long a stream that was ended may take to flush before its socket is destroyed. */
const END_GRACE_MS = 1000;

export interface ProxyStreamOptions {
  readonly clock: Clock;
  /** A ping frame goes out after this long without another frame. */
  readonly pingIntervalMs: number;
  /** The version the proxy says it holds: a snapshot of that version is not written. */
  readonly heldVersion?: string;
  /** Called after a snapshot frame is handed to the socket. */
  readonly onWritten: (snapshot: MeshSnapshot) => void;
}

/**
 * Writes the snapshots it is given to one proxy. Never queues more than one: while the socket's
 * buffer is full (a slow or stalled reader), only the newest snapshot is kept, and it is written
 * on 'drain'; the versions in between are skipped, which is what the proxy wants anyway.
 */
export class ProxyStream {
  readonly #res: ServerResponse;
  readonly #options: ProxyStreamOptions;
  /** The version last written (or the one the proxy held when it connected). */
  #lastVersion: string | undefined;
  #pending: MeshSnapshot | undefined;
  #waitingDrain = false;
  #ping: TimerHandle | undefined;
  #ended = false;

  constructor(res: ServerResponse, options: ProxyStreamOptions) {
    this.#res = res;
    this.#options = options;
    this.#lastVersion = options.heldVersion;
    res.on('drain', () => this.#onDrain());
    res.once('close', () => {
      this.#ended = true;
      this.#stopPing();
    });
    this.#schedulePing();
  }

  /** Whether a snapshot waits for the socket to drain. */
  get backlogged(): boolean {
    return this.#waitingDrain;
  }

  /** Sends `snapshot` (or keeps it as the one pending while the socket is full). */
  send(snapshot: MeshSnapshot): void {
    if (this.#ended) return;
    if (this.#waitingDrain) {
      this.#pending = snapshot;
      return;
    }
    this.#write(snapshot);
  }

  /** Ends the stream cleanly (the proxy sees the end of the response and reconnects). */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#pending = undefined;
    this.#stopPing();
    const res = this.#res;
    res.end(() => res.destroy());
    // A peer that reads nothing would hold the socket forever.
    const cut = this.#options.clock.setTimeout(() => res.destroy(), END_GRACE_MS);
    cut.unref?.();
    res.once('close', () => this.#options.clock.clearTimeout(cut));
  }

  #write(snapshot: MeshSnapshot): void {
    if (snapshot.version === this.#lastVersion) return;
    this.#lastVersion = snapshot.version;
    const [head, tail] = snapshotFrame(snapshot);
    const res = this.#res;
    // One writev for both: the head is this proxy's, the tail is shared.
    res.cork();
    res.write(head);
    const ok = res.write(tail);
    res.uncork();
    this.#options.onWritten(snapshot);
    this.#schedulePing();
    if (!ok) this.#waitingDrain = true;
  }

  #onDrain(): void {
    this.#waitingDrain = false;
    const next = this.#pending;
    this.#pending = undefined;
    if (next !== undefined && !this.#ended) this.#write(next);
  }

  #schedulePing(): void {
    this.#stopPing();
    if (this.#ended) return;
    this.#ping = this.#options.clock.setTimeout(() => {
      this.#ping = undefined;
      // A full buffer: the proxy has data to read; a ping would only add to it.
      if (!this.#waitingDrain && !this.#ended && this.#res.write(PING_FRAME) === false)
        this.#waitingDrain = true;
      this.#schedulePing();
    }, this.#options.pingIntervalMs);
    this.#ping.unref?.();
  }

  #stopPing(): void {
    if (this.#ping !== undefined) this.#options.clock.clearTimeout(this.#ping);
    this.#ping = undefined;
  }
}
