/**
 * @module Worker for bench:checks: the HTTP check target, a plain node:http server that answers
 * 200 "ok" and records, per path, when each probe arrived (cross-process clock).
 *
 * IPC in:  {type:'listen'}   {type:'report', from, to}
 * IPC out: {type:'listening', port}
 *          {type:'report', arrivals, intervals, paths, cpuCores}
 *          (intervals: between consecutive arrivals of one path, both inside [from, to])
 */
import { createServer } from 'node:http';

const arrivals = new Map<string, number[]>();
const now = (): number => performance.timeOrigin + performance.now();
const BODY = Buffer.from('ok');

const server = createServer((req, res) => {
  const t = now();
  const path = req.url ?? '';
  let list = arrivals.get(path);
  if (list === undefined) {
    list = [];
    arrivals.set(path, list);
  }
  list.push(t);
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  res.end(BODY);
});
// Probes come every ~5 s per check over pooled keep-alive connections; do not close them early.
server.keepAliveTimeout = 65_000;

let cpu0 = process.cpuUsage();
let t0 = performance.now();

process.on('message', (m: { type: string; from?: number; to?: number }) => {
  if (m.type === 'listen') {
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      process.send?.({ type: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
    });
  } else if (m.type === 'mark') {
    cpu0 = process.cpuUsage();
    t0 = performance.now();
    process.send?.({ type: 'marked' });
  } else if (m.type === 'report') {
    const from = m.from ?? 0;
    const to = m.to ?? Number.POSITIVE_INFINITY;
    const cpu = process.cpuUsage(cpu0);
    const cpuCores = (cpu.user + cpu.system) / 1000 / (performance.now() - t0);
    let inWindow = 0;
    const intervals: number[] = [];
    for (const list of arrivals.values()) {
      let prev: number | undefined;
      for (const t of list) {
        if (t < from || t > to) {
          prev = undefined;
          continue;
        }
        inWindow++;
        if (prev !== undefined) intervals.push(t - prev);
        prev = t;
      }
    }
    process.send?.({
      type: 'report',
      arrivals: inWindow,
      intervals,
      paths: arrivals.size,
      cpuCores,
    });
  }
});

process.on('disconnect', () => process.exit(0));
