/**
 * @module bench:ui-stream: what open dashboards cost the agent. Each dashboard holds the stream
 * its pages follow, `GET /api/v1/watch` (the whole catalog, server-sent events); the bench makes
 * 100 catalog changes a second and reads the agent's CPU (/proc) with no dashboard open and with
 * 100 open, alternating, so the difference is the streams' cost (issue 21: under 5% of a core).
 * The streams ask for `?interval=250ms` as the dashboard does (`--interval 0`: a write per change).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { startAgent, type AgentHandle } from '../lib/agent.js';
import { runMain } from '../lib/cleanup.js';
import { flags, sleep } from '../lib/load.js';
import { CpuWindow } from '../lib/proc.js';
import { agentPool, putInstance, registerMany, registration } from '../lib/registry-load.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import { median } from '../lib/stats.js';

const opts = flags('npm run bench:ui-stream -- [flags]', {
  dashboards: { default: 100, help: 'open dashboards (one catalog stream each)' },
  rate: { default: 100, help: 'catalog changes per second' },
  seconds: { default: 10, help: 'seconds per measured phase' },
  rounds: { default: 3, help: 'rounds of (no dashboards, dashboards) phases' },
  services: { default: 20, help: 'services in the catalog' },
  instances: { default: 200, help: 'instances in the catalog (the snapshot each stream gets)' },
  'quiet-wait': { default: 60, help: 'seconds to wait for other work on the machine to settle' },
  interval: {
    default: '250ms',
    help: "the stream's ?interval= (the dashboard's: at most one write per interval); 0 for a write per change",
  },
});

/** One open dashboard's stream: counts the change events it was sent. */
interface Dashboard {
  events: number;
  close(): void;
}

function openDashboard(url: string): Promise<Dashboard> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/api/v1/watch?interval=${opts.interval}`, {
      headers: { accept: 'text/event-stream' },
    });
    req.on('error', reject);
    req.on('response', (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        reject(new Error(`watch answered ${res.statusCode}`));
        return;
      }
      const d: Dashboard = { events: 0, close: () => req.destroy() };
      let snapshot = false;
      let tail = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        // Count `event: upsert` lines; the data lines (whole instances) are what a page parses.
        const text = tail + chunk;
        const lines = text.split('\n');
        tail = lines.pop() ?? '';
        for (const line of lines) {
          if (line === 'event: snapshot' && !snapshot) {
            snapshot = true;
            resolve(d);
          } else if (line === 'event: upsert') d.events += 1;
        }
      });
      res.on('error', () => undefined);
    });
    req.end();
  });
}

/** Makes `rate` changes a second for `seconds` (open loop); answers how many were made. */
async function drive(agent: AgentHandle, seconds: number, rate: number, from: number) {
  const pool = agentPool(agent.url, 8);
  const intervalMs = 1000 / rate;
  const start = performance.now();
  const total = Math.round(seconds * rate);
  const pending: Promise<boolean>[] = [];
  for (let i = 0; i < total; i += 1) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    // A real change: the instance's meta.rev moves, so every stream is sent an upsert.
    const n = (from + i) % opts.instances;
    const r = registration(`svc-${n % opts.services}`, `i-${n}`, n, []);
    r.meta.rev = String(from + i);
    pending.push(putInstance(pool, JSON.stringify(r)));
  }
  const ok = (await Promise.all(pending)).filter(Boolean).length;
  await pool.close();
  return { made: ok, lateMs: performance.now() - start - seconds * 1000 };
}

runMain(async () => {
  const report = new Report('ui-stream', 'npm run bench:ui-stream');
  report.quiet(await settle(opts['quiet-wait']));
  const agent = await startAgent({ dev: true });
  try {
    await registerMany(
      agent.url,
      opts.instances,
      (i) => registration(`svc-${i % opts.services}`, `i-${i}`, i, []),
      16,
    );
    const rows: (string | number)[][] = [];
    const idle: number[] = [];
    const open: number[] = [];
    let changes = 0;
    let delivered = 0;
    let expected = 0;
    for (let round = 1; round <= opts.rounds; round += 1) {
      for (const withDashboards of [false, true]) {
        const dashboards = withDashboards
          ? await Promise.all(
              Array.from({ length: opts.dashboards }, () => openDashboard(agent.url)),
            )
          : [];
        await sleep(500);
        const cpu = new CpuWindow(agent.pid);
        const r = await drive(agent, opts.seconds, opts.rate, changes);
        const used = cpu.read();
        changes += r.made;
        // Let the last events arrive before counting them.
        await sleep(500);
        if (withDashboards) {
          delivered += dashboards.reduce((n, d) => n + d.events, 0);
          expected += r.made * dashboards.length;
        }
        for (const d of dashboards) d.close();
        (withDashboards ? open : idle).push(used.cores);
        rows.push([
          round,
          withDashboards ? opts.dashboards : 0,
          r.made,
          fmt(r.made / used.wallSeconds),
          fmt(used.cores * 100, 1),
        ]);
        log(
          `round ${round}, ${withDashboards ? opts.dashboards : 0} dashboards: ${fmt(used.cores * 100, 1)}% of a core`,
        );
      }
    }
    const deltas = idle.map((c, i) => (open[i] ?? c) - c);
    report.meta(
      `setup: agent (--dev, memory store), ${opts.instances} instances in ${opts.services} services; a change = PUT /api/v1/instances moving one instance's meta (${opts.rate}/s, open loop, 8 connections); a dashboard = one GET /api/v1/watch?interval=${opts.interval} (whole catalog, as the dashboard opens it) read in the bench process`,
    );
    report.section(
      'agent CPU',
      table(['round', 'dashboards', 'changes', 'changes/s', 'agent CPU (% of a core)'], rows),
    );
    report.text(
      `Cost of ${opts.dashboards} dashboards at ${opts.rate} changes/s: **${fmt(median(deltas) * 100, 1)}% of a core** (median of ${deltas.length} paired rounds; each: ${deltas.map((d) => fmt(d * 100, 1)).join(', ')}); the agent at the same change rate without dashboards: ${fmt(median(idle) * 100, 1)}%. Events delivered: ${delivered} of ${expected}.`,
    );
    report.finish();
  } finally {
    await agent.stop();
  }
});
