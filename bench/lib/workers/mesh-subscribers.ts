/**
 * @module Worker for bench:mesh-push: holds many MeshSubscribers (the SDK's proxy side of the
 * push protocol: a real HTTP stream each, NDJSON parsed, the snapshot "applied", then ACKed over
 * HTTP) and records when the agent took each ACK, on the cross-process clock
 * (performance.timeOrigin + performance.now()).
 *
 * IPC in:  {type:'start', url, count, first, services, scope:'declared'|'all', upstream}
 *          {type:'collect', after, timeoutMs}   {type:'now'}
 * IPC out: {type:'ready', count} (every subscriber has ACKed its first snapshot)
 *          {type:'collected', times: (number|null)[], versions: (string|null)[]}   {type:'now', t}
 */
import { MeshSubscriber } from '../../../src/client/mesh-subscriber.js';
import type { MeshSnapshot } from '../../../src/protocol/mesh/snapshot.js';

interface Start {
  type: 'start';
  url: string;
  count: number;
  /** The number of this worker's first subscriber (ids and services follow from it). */
  first: number;
  services: number;
  scope: 'declared' | 'all';
  upstream: string;
}

type Message = Start | { type: 'collect'; after: number; timeoutMs: number } | { type: 'now' };

const now = (): number => performance.timeOrigin + performance.now();

/** Per subscriber: the versions the agent took an ACK of, and when. */
const acks: { version: string[]; t: number[] }[] = [];
const subscribers: MeshSubscriber[] = [];

/** A proxy's work on a snapshot, kept small: walk what an engine would index. */
function apply(snapshot: MeshSnapshot): void {
  let n = 0;
  for (const r of snapshot.routes) n += r.backends.length + r.match.length;
  for (const c of snapshot.clusters) n += c.endpoints.length;
  if (n < 0) throw new Error('unreachable');
}

/** The first ACK after `after` of a version other than the one held at `after`. */
function ackAfter(w: number, after: number): { t: number; version: string } | undefined {
  const a = acks[w];
  if (a === undefined) return undefined;
  let held: string | undefined;
  for (let i = 0; i < a.t.length; i++) {
    const t = a.t[i] as number;
    const version = a.version[i] as string;
    if (t < after) held = version;
    else if (version !== held) return { t, version };
  }
  return undefined;
}

function start(m: Start): void {
  let ready = 0;
  for (let k = 0; k < m.count; k++) {
    const i = m.first + k;
    const w = acks.push({ version: [], t: [] }) - 1;
    const service = `svc-${i % m.services}`;
    const sub = new MeshSubscriber({
      registry: [m.url],
      proxy: {
        id: `sidecar-${i}`,
        kind: 'sidecar',
        name: service,
        namespace: 'default',
        ...(m.scope === 'declared'
          ? { upstreams: [m.upstream, `svc-${(i + 1) % m.services}`] }
          : {}),
      },
      apply,
      backoff: { initialMs: 100, maxMs: 2000 },
    });
    sub.on('answered', (ack) => {
      if (ack.error !== undefined) return;
      const a = acks[w];
      if (a === undefined) return;
      const first = a.t.length === 0;
      a.version.push(ack.version);
      a.t.push(now());
      if (first && ++ready === m.count) process.send?.({ type: 'ready', count: ready });
    });
    sub.on('nack', (version, error) => console.error(`sidecar-${i}: NACK ${version}: ${error}`));
    subscribers.push(sub);
    void sub.start();
  }
}

process.on('message', (m: Message) => {
  if (m.type === 'start') start(m);
  else if (m.type === 'now') process.send?.({ type: 'now', t: now() });
  else {
    // Polled every 20 ms, so collecting never delays reading the streams.
    const deadline = Date.now() + m.timeoutMs;
    const timer = setInterval(() => {
      const found = acks.map((_, w) => ackAfter(w, m.after));
      if (found.every((f) => f !== undefined) || Date.now() >= deadline) {
        clearInterval(timer);
        process.send?.({
          type: 'collected',
          times: found.map((f) => f?.t ?? null),
          versions: found.map((f) => f?.version ?? null),
        });
      }
    }, 20);
  }
});

process.on('disconnect', () => {
  void Promise.all(subscribers.map((s) => s.close())).finally(() => process.exit(0));
});
