/**
 * @module Micro benchmark of the access log's writer: the CPU of the whole process (main thread
 * and libuv's thread pool, `process.cpuUsage`) per line written to a file, for the writer the
 * sidecar uses (64 KiB batches through `fs.createWriteStream`) against pino's asynchronous
 * destination (sonic-boom) with 4 KiB writes, the writer before it, and against the line's JSON
 * alone. Lines are a realistic sidecar access log entry (~600 bytes); the event loop turns every
 * 1,000 lines so the writes complete as they would under traffic.
 * Usage: npm run bench:access-log-writer [-- --lines 200000 --rounds 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { destination } from 'pino';
import { createAccessLogWriter } from '../../src/telemetry/access-log-writer.js';
import { flags } from '../lib/load.js';
import { median } from '../lib/stats.js';

const opts = flags('npm run bench:access-log-writer -- [flags]', {
  lines: { default: 200_000, help: 'lines per round' },
  rounds: { default: 5, help: 'rounds per writer (the median is reported)' },
});

const ENTRY = {
  start_time: '2026-12-07T00:00:00.000Z',
  method: 'GET',
  path: '/users/12345',
  protocol: 'HTTP/1.1',
  response_code: 200,
  response_flags: '-',
  bytes_received: 0,
  bytes_sent: 13,
  duration: 1,
  upstream_service_time: 1,
  user_agent: 'wrk',
  request_id: 'c0ffee00-1234-5678-9abc-def012345678',
  authority: 'bench-app',
  upstream_host: '127.0.0.1:12345',
  upstream_cluster: 'outbound|80|v1|bench-app.default.svc.cluster.local',
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  reporter: 'source',
  source_workload: 'client',
  destination_service: 'bench-app',
  connection_security_policy: 'none',
  downstream_remote_address: '127.0.0.1:55555',
};

interface Writer {
  write(): void;
  close(): Promise<void>;
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** CPU µs of the whole process per line for `lines` lines through a fresh writer. */
async function measure(make: () => Writer): Promise<number> {
  const w = make();
  const before = process.cpuUsage();
  for (let i = 0; i < opts.lines; i++) {
    w.write();
    if (i % 1000 === 999) await turn();
  }
  await w.close();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / opts.lines;
}

const dir = mkdtempSync(join(tmpdir(), 'bench-access-log-'));
let sink = 0;
const writers: Record<string, (file: string) => Writer> = {
  'JSON of the line only (no write)': () => ({
    write: () => void (sink += JSON.stringify(ENTRY).length),
    close: () => Promise.resolve(),
  }),
  'sonic-boom, 4 KiB writes (before)': (file) => {
    const d = destination({ dest: file, sync: false, minLength: 4096, periodicFlush: 1000 });
    return {
      write: () => void d.write(`${JSON.stringify(ENTRY)}\n`),
      close: () =>
        new Promise((r) => {
          d.once('close', r);
          d.end();
        }),
    };
  },
  'createAccessLogWriter (64 KiB batches)': (file) => {
    const w = createAccessLogWriter(file);
    return { write: () => w.write(ENTRY), close: () => w.close(10_000) };
  },
};

const results: [string, number[]][] = Object.keys(writers).map((k) => [k, []]);
for (let round = 0; round < opts.rounds; round++)
  for (const [name, samples] of results) {
    const file = join(dir, `r${round}.log`);
    samples.push(await measure(() => (writers[name] as (f: string) => Writer)(file)));
    rmSync(file, { force: true });
  }
rmSync(dir, { recursive: true, force: true });

console.log(
  `## access-log-writer\n\n- ${new Date().toISOString()}; ${cpus().length} × ${cpus()[0]?.model ?? '?'}; load average ${loadavg()[0]?.toFixed(2)}; ${opts.lines} lines × ${opts.rounds} rounds, ${JSON.stringify(ENTRY).length + 1} bytes a line (${sink > 0 ? 'kept live' : ''})\n`,
);
console.log('| writer | CPU µs per line (median) | rounds |');
console.log('| --- | ---: | --- |');
for (const [name, samples] of results)
  console.log(
    `| ${name} | ${median(samples).toFixed(2)} | ${samples.map((s) => s.toFixed(2)).join(' / ')} |`,
  );
