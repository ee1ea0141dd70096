/** @module EtcdLeaseKeeper: etcd lease keep-alives over one long-lived stream, for heartbeats. */
import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from 'etcd3';

/**
 * Heartbeats as etcd lease keep-alives over one long-lived stream: a keep-alive is one small
 * message, not a write (no revision, no watch event), so heartbeats cost etcd almost nothing.
 * The stream opens on the first keep-alive and again after it fails; a failure rejects every
 * keep-alive waiting on it.
 */
export class EtcdLeaseKeeper {
  readonly #client: Etcd3;
  #stream: Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> | undefined;
  /** Lease id -> callers waiting for its answer, in request order. */
  readonly #pending = new Map<string, { resolve(ttl: number): void; reject(e: Error): void }[]>();

  constructor(client: Etcd3) {
    this.#client = client;
  }

  /** Resolves with the lease's remaining TTL in seconds; 0 or less when it has expired. */
  async keepAlive(lease: string): Promise<number> {
    const stream = await this.#open();
    return new Promise<number>((resolve, reject) => {
      let waiting = this.#pending.get(lease);
      if (waiting === undefined) this.#pending.set(lease, (waiting = []));
      waiting.push({ resolve, reject });
      stream.write({ ID: lease });
    });
  }

  /** Ends the stream and fails every waiting keep-alive. */
  close(): void {
    void this.#stream?.then((s) => s.end()).catch(() => undefined);
    this.#fail(new Error('store is closed'));
  }

  #open(): Promise<IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>> {
    if (this.#stream !== undefined) return this.#stream;
    const opening = this.#client.leaseClient.leaseKeepAlive().then((stream) => {
      stream.on('data', (res: ILeaseKeepAliveResponse) => {
        const waiting = this.#pending.get(String(res.ID));
        const next = waiting?.shift();
        if (waiting?.length === 0) this.#pending.delete(String(res.ID));
        next?.resolve(Number(res.TTL));
      });
      stream.on('error', (err: Error) => this.#fail(err, opening));
      stream.on('end', () => this.#fail(new Error('keep-alive stream ended'), opening));
      return stream;
    });
    opening.catch(() => {
      if (this.#stream === opening) this.#stream = undefined;
    });
    this.#stream = opening;
    return opening;
  }

  /** Fails every waiting keep-alive; the next one opens a new stream. */
  #fail(err: Error, stream?: Promise<unknown>): void {
    if (stream !== undefined && this.#stream !== stream) return;
    this.#stream = undefined;
    const pending = [...this.#pending.values()].flat();
    this.#pending.clear();
    for (const p of pending) p.reject(err);
  }
}
