/**
 * @module An OTLP/HTTP traces receiver for benchmarks: it reads each export, drops it and counts
 * it, in its own process (a bench that runs wrk through spawnSync blocks its own event loop for
 * a round, and a receiver there would time every export out; in-process benches would count its
 * CPU as the proxies').
 */
import { spawnChild, waitForLine, type Child } from './proc.js';

const OTLP_SINK = `
const http = require('node:http');
let exports = 0, bytes = 0;
const server = http.createServer((req, res) => {
  if (req.url === '/count') return res.end(JSON.stringify({ exports, bytes }));
  exports++;
  req.on('data', (c) => (bytes += c.length));
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
`;

export interface OtlpSink {
  /** The traces URL to export to (`--tracing-endpoint`). */
  readonly url: string;
  /** Exports (requests) and bytes received so far. */
  received(): Promise<{ exports: number; bytes: number }>;
  readonly child: Child;
}

/** Starts the receiver on a free loopback port; resolves once it listens. */
export async function startOtlpSink(): Promise<OtlpSink> {
  const child = spawnChild('otlp sink', process.execPath, ['-e', OTLP_SINK]);
  const m = await waitForLine(child, /listening (\d+)/);
  const base = `http://127.0.0.1:${m[1] ?? ''}`;
  return {
    url: `${base}/v1/traces`,
    received: async () =>
      (await (await fetch(`${base}/count`)).json()) as { exports: number; bytes: number },
    child,
  };
}
