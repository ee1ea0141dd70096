/**
 * @module Worker for bench:fanout: holds many watchers of one service (SSE streams or blocking
 * queries), each on its own socket, and records when each watcher receives each index, on the
 * cross-process clock (performance.timeOrigin + performance.now()).
 *
 * IPC in:  {type:'start', url, service, count, mode:'sse'|'blocking'|'consul', index?, client?}
 *          ('consul': blocking queries on /v1/health/service/<service>, X-Consul-Index;
 *          client 'raw' (default) re-issues them on a minimal socket client, 'node' on node:http)
 *          {type:'collect', index, timeoutMs}   {type:'now'}
 * IPC out: {type:'ready', count} (sse: every snapshot received; blocking: every query sent)
 *          {type:'collected', index, times: (number|null)[]}   {type:'now', t}
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';

interface Start {
  type: 'start';
  url: string;
  service: string;
  count: number;
  mode: 'sse' | 'blocking' | 'consul';
  index?: number;
  client?: 'raw' | 'node';
}

type Message = Start | { type: 'collect'; index: number; timeoutMs: number } | { type: 'now' };

const now = (): number => performance.timeOrigin + performance.now();

/** Per watcher: indexes received (ascending) and when. */
const seen: { index: number[]; t: number[] }[] = [];
function record(w: number, index: number, t: number): void {
  const s = seen[w];
  if (s === undefined) return;
  s.index.push(index);
  s.t.push(t);
}

/** First time watcher `w` saw an index >= `index`, or undefined. */
function firstAtOrAfter(w: number, index: number): number | undefined {
  const s = seen[w];
  if (s === undefined) return undefined;
  for (let i = 0; i < s.index.length; i++) if ((s.index[i] ?? 0) >= index) return s.t[i];
  return undefined;
}

function startSse(m: Start): void {
  let ready = 0;
  const url = new URL(`/api/v1/watch?service=${encodeURIComponent(m.service)}`, m.url);
  for (let w = 0; w < m.count; w++) {
    seen.push({ index: [], t: [] });
    const req = request(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) throw new Error(`watch: HTTP ${res.statusCode}`);
      res.setEncoding('utf8');
      let buf = '';
      let snapshot = false;
      res.on('data', (chunk: string) => {
        const t = now();
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const type = /^event: (\S+)/m.exec(frame)?.[1];
          const id = Number(/^id: (\d+)/m.exec(frame)?.[1]);
          if (type === 'snapshot') {
            if (!snapshot) {
              snapshot = true;
              if (++ready === m.count) process.send?.({ type: 'ready', count: ready });
            }
          } else if (type !== undefined && Number.isFinite(id)) record(w, id, t);
        }
      });
      res.on('end', () => {
        if (!stopping) console.error(`watcher ${w}: stream ended`);
      });
    });
    req.on('error', (err) => {
      if (!stopping) console.error(`watcher ${w}: ${err.message}`);
    });
    req.end();
  }
}

/** The path and index header of a blocking query in mode `m`. */
function blockingTarget(m: Start): { base: string; indexHeader: string } {
  return m.mode === 'consul'
    ? { base: `/v1/health/service/${encodeURIComponent(m.service)}`, indexHeader: 'x-consul-index' }
    : {
        base: `/api/v1/services/${encodeURIComponent(m.service)}/instances`,
        indexHeader: 'x-meshwork-index',
      };
}

/**
 * Blocking queries on raw keep-alive sockets: the request bytes written by hand, the answer framed
 * by Content-Length and its body skipped, not parsed. node:http's client costs the worker ~50-100
 * µs per answer and re-issue, and with 500 watchers per worker on a 2-core machine that cost (not
 * the agent's) decides when the last watcher sees its answer. A real client pays it too; the bench
 * measures the agent, so by default the driver stays out of the way (`--client node` to compare).
 */
function startBlockingRaw(m: Start): void {
  const { base, indexHeader } = blockingTarget(m);
  const url = new URL(m.url);
  const indexRe = new RegExp(`\\r\\n${indexHeader}:\\s*(\\d+)`, 'i');
  let sent = 0;
  for (let w = 0; w < m.count; w++) {
    seen.push({ index: [], t: [] });
    let index = m.index ?? 1;
    let head = '';
    let bodyLeft = 0;
    let status = 0;
    let next = index;
    const socket = connect({ host: url.hostname, port: Number(url.port), noDelay: true });
    const send = (): void => {
      socket.write(`GET ${base}?index=${index}&wait=300s HTTP/1.1\r\nhost: ${url.host}\r\n\r\n`);
    };
    const done = (t: number): void => {
      if (status !== 200) {
        console.error(`watcher ${w}: HTTP ${status}`);
        return;
      }
      if (next > index) record(w, next, t);
      index = next;
      if (!stopping) send();
    };
    socket.on('data', (chunk: Buffer) => {
      const t = now();
      let data = chunk;
      while (data.length > 0) {
        if (bodyLeft > 0) {
          const take = Math.min(bodyLeft, data.length);
          bodyLeft -= take;
          data = data.subarray(take);
          if (bodyLeft === 0) done(t);
          continue;
        }
        head += data.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = Number(head.slice(9, 12));
        next = Number(indexRe.exec(head)?.[1] ?? index);
        const length = /\r\ncontent-length:\s*(\d+)/i.exec(head.slice(0, end));
        if (length === null) throw new Error(`watcher ${w}: answer without content-length`);
        bodyLeft = Number(length[1]);
        data = Buffer.from(head.slice(end + 4), 'latin1');
        head = '';
        if (bodyLeft === 0) done(t);
      }
    });
    socket.on('error', (err) => {
      if (!stopping) console.error(`watcher ${w}: ${err.message}`);
    });
    send();
    if (++sent === m.count) process.send?.({ type: 'ready', count: sent });
  }
}

function startBlocking(m: Start): void {
  // Keep-alive with no socket cap: each watcher keeps one connection, as a real client would.
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  let sent = 0;
  const { base, indexHeader } = blockingTarget(m);
  const poll = (w: number, index: number): void => {
    const req = request(
      new URL(`${base}?index=${index}&wait=300s`, m.url),
      { agent },
      (res: IncomingMessage) => {
        const next = Number(res.headers[indexHeader] ?? index);
        res.on('data', () => {});
        res.on('end', () => {
          const t = now();
          if (res.statusCode !== 200) {
            console.error(`watcher ${w}: HTTP ${res.statusCode}`);
            return;
          }
          if (next > index) record(w, next, t);
          if (!stopping) poll(w, next);
        });
      },
    );
    req.on('error', (err) => {
      if (!stopping) console.error(`watcher ${w}: ${err.message}`);
    });
    req.end();
    if (++sent === m.count) process.send?.({ type: 'ready', count: sent });
  };
  for (let w = 0; w < m.count; w++) {
    seen.push({ index: [], t: [] });
    poll(w, m.index ?? 1);
  }
}

let stopping = false;

process.on('message', (m: Message) => {
  if (m.type === 'start') {
    if (m.mode === 'sse') startSse(m);
    else if (m.client === 'node') startBlocking(m);
    else startBlockingRaw(m);
  } else if (m.type === 'now') {
    process.send?.({ type: 'now', t: now() });
  } else if (m.type === 'collect') {
    // Polled every 20 ms rather than on each receipt, so collecting never delays reading sockets
    // (receipt times are taken as data arrives).
    const deadline = Date.now() + m.timeoutMs;
    const timer = setInterval(() => {
      const times = seen.map((_, w) => firstAtOrAfter(w, m.index) ?? null);
      if (times.every((t) => t !== null) || Date.now() >= deadline) {
        clearInterval(timer);
        process.send?.({ type: 'collected', index: m.index, times });
      }
    }, 20);
  }
});

process.on('disconnect', () => {
  stopping = true;
  process.exit(0);
});
