/**
 * @module bench:mesh-push: 1,000 proxies (MeshSubscribers, each on its own push stream, held by
 * worker processes) connected to a real agent process; one VirtualService change at a time
 * through POST /api/v1/mesh/apply; for each proxy, the time from just before the apply is sent
 * until the agent took that proxy's ACK of its new version. Also the agent's RSS with every proxy
 * connected.
 */
import { profiling, startAgent, scrapeMetric, type AgentHandle } from '../lib/agent.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { runMain } from '../lib/cleanup.js';
import { flags, sleep } from '../lib/load.js';
import { clockSkew, CpuWindow, forkWorker, readMemory, request, type Child } from '../lib/proc.js';
import { registerMany, registration } from '../lib/registry-load.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import { median, sharedNow, summarize, type Summary } from '../lib/stats.js';
import { fileURLToPath } from 'node:url';

const opts = flags('npm run bench:mesh-push -- [flags]', {
  proxies: { default: 1000, help: 'connected proxies (sidecars)' },
  workers: { default: 2, help: 'worker processes holding the proxies' },
  services: {
    default: 100,
    help: 'services in the catalog (2 instances each); proxies spread over them',
  },
  changes: { default: 7, help: 'measured VirtualService changes (one at a time)' },
  'warmup-changes': { default: 2, help: 'untimed changes first (JIT warm-up)' },
  scope: {
    default: 'declared',
    help: 'declared: each sidecar declares its upstreams (payments and one more); all: none declared (every service in every snapshot)',
  },
  change: {
    default: 'vs',
    help: 'vs: a VirtualService with new weights through POST /api/v1/mesh/apply; instance: a new instance of the target service through PUT /api/v1/instances (where the agent has no mesh apply API yet)',
  },
  'cpu-prof': {
    default: false,
    help: 'run the agent under --cpu-prof (its profile of the changes is reported)',
  },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
});

const WORKER = fileURLToPath(new URL('../lib/workers/mesh-subscribers.ts', import.meta.url));
const TARGET = 'payments';

const destinationRule = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name: TARGET },
  spec: {
    host: TARGET,
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  },
};

function virtualService(v1Weight: number): object {
  return {
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'VirtualService',
    metadata: { name: TARGET },
    spec: {
      hosts: [TARGET],
      http: [
        {
          route: [
            { destination: { host: TARGET, subset: 'v1' }, weight: v1Weight },
            { destination: { host: TARGET, subset: 'v2' }, weight: 100 - v1Weight },
          ],
        },
      ],
    },
  };
}

async function applyDocuments(url: string, documents: readonly object[]): Promise<void> {
  const res = await fetch(`${url}/api/v1/mesh/apply`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ documents }),
  });
  if (res.status !== 200) throw new Error(`mesh apply: HTTP ${res.status}: ${await res.text()}`);
}

async function setUp(agent: AgentHandle): Promise<void> {
  await registerMany(agent.url, opts.services * 2, (i) =>
    registration(`svc-${i % opts.services}`, `svc-${i % opts.services}-${i}`, i, []),
  );
  await registerMany(agent.url, 2, (i) => {
    const r = registration(TARGET, `${TARGET}-${i}`, 60_000 + i, []);
    return { ...r, meta: { ...r.meta, version: `v${i + 1}` } };
  });
  if (opts.change === 'vs') await applyDocuments(agent.url, [destinationRule, virtualService(90)]);
}

/** One change every proxy's snapshot depends on; `n` numbers it. */
async function change(url: string, n: number, weight: number): Promise<void> {
  if (opts.change === 'vs') {
    await applyDocuments(url, [virtualService(weight)]);
    return;
  }
  const r = registration(TARGET, `${TARGET}-change-${n}`, 61_000 + n, []);
  const res = await fetch(`${url}/api/v1/instances`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...r, meta: { ...r.meta, version: 'v2' } }),
  });
  if (res.status !== 200) throw new Error(`register: HTTP ${res.status}: ${await res.text()}`);
}

async function startProxies(url: string): Promise<Child[]> {
  const per = Math.ceil(opts.proxies / opts.workers);
  const workers: Child[] = [];
  const started: Promise<unknown>[] = [];
  for (let i = 0; i < opts.workers; i++) {
    const count = Math.max(0, Math.min(per, opts.proxies - i * per));
    const w = forkWorker(`subscribers-${i}`, WORKER);
    workers.push(w);
    started.push(
      request(
        w,
        {
          type: 'start',
          url,
          count,
          first: i * per,
          services: opts.services,
          scope: opts.scope,
          upstream: TARGET,
        },
        'ready',
        120_000,
      ),
    );
  }
  await Promise.all(started);
  return workers;
}

interface ChangeResult {
  readonly lat: Summary;
  readonly missing: number;
  readonly applyMs: number;
  readonly versions: number;
  /** Time the control plane spent compiling the new snapshots. */
  readonly compileMs: number;
  /** CPU the agent used from just before the change until every ACK was in (/proc). */
  readonly agentCpuMs: number;
  /** CPU the worker processes (the proxies) used in the same window. */
  readonly workersCpuMs: number;
}

runMain(async () => {
  const busy = await settle(opts['quiet-wait']);
  const agent = await startAgent(profiling(opts['cpu-prof']));
  await setUp(agent);
  const rssBefore = readMemory(agent.pid).rssMiB;
  const connectStart = Date.now();
  const workers = await startProxies(agent.url);
  const connectS = (Date.now() - connectStart) / 1000;
  await sleep(1000);
  const rssConnected = readMemory(agent.pid).rssMiB;
  const connected =
    (await scrapeMetric(agent.url, 'meshwork_mesh_proxies_connected', 'kind="sidecar"')) +
    (await scrapeMetric(agent.url, 'meshwork_mesh_proxies_connected', 'kind="gateway"'));
  log(
    `${opts.proxies} proxies ACKed their first snapshot in ${fmt(connectS)} s; agent counts ${connected} connected; agent RSS ${fmt(rssBefore)} -> ${fmt(rssConnected)} MiB`,
  );
  const skew = await clockSkew(workers);

  const results: ChangeResult[] = [];
  const windows: [number, number][] = [];
  let rssPeak = rssConnected;
  const compileSeconds = (): Promise<number> =>
    scrapeMetric(agent.url, 'meshwork_control_plane_compile_seconds_sum', 'kind="sidecar"');
  try {
    for (let k = 1 - opts['warmup-changes']; k <= opts.changes; k++) {
      await sleep(500);
      // 90/10, 80/20, ... never the weights in force.
      const weight = 80 - ((k + opts['warmup-changes']) % 8) * 10;
      const compiled0 = await compileSeconds();
      const mono0 = monoMicros();
      const agentCpu = new CpuWindow(agent.pid);
      const workersCpu = workers.map((w) => new CpuWindow(w.pid));
      const t0 = sharedNow();
      await change(agent.url, k + opts['warmup-changes'], weight);
      const applyMs = sharedNow() - t0;
      const collected = await Promise.all(
        workers.map((w) =>
          request<{ times: (number | null)[]; versions: (string | null)[] }>(
            w,
            { type: 'collect', after: t0, timeoutMs: 30_000 },
            'collected',
            60_000,
          ),
        ),
      );
      const times = collected.flatMap((c) => c.times);
      const versions = new Set(collected.flatMap((c) => c.versions).filter((v) => v !== null));
      const got = times.filter((t): t is number => t !== null).map((t) => t - t0);
      const lat = summarize(got);
      rssPeak = Math.max(rssPeak, readMemory(agent.pid).rssMiB);
      const agentCpuMs = agentCpu.read().cpuSeconds * 1000;
      const workersCpuMs = workersCpu.reduce((a, c) => a + c.read().cpuSeconds * 1000, 0);
      const compileMs = ((await compileSeconds()) - compiled0) * 1000;
      const warm = k <= 0;
      if (!warm) {
        windows.push([mono0, monoMicros()]);
        results.push({
          lat,
          missing: times.length - got.length,
          applyMs,
          versions: versions.size,
          compileMs,
          agentCpuMs,
          workersCpuMs,
        });
      }
      log(
        `${warm ? 'warm-up change' : `change ${k}`} (${weight}/${100 - weight}): p50 ${fmt(lat.p50)} ms, p99 ${fmt(lat.p99)} ms, max ${fmt(lat.max)} ms, missing ${times.length - got.length}, apply ${fmt(applyMs)} ms, compile ${fmt(compileMs)} ms, agent CPU ${fmt(agentCpuMs)} ms, proxies CPU ${fmt(workersCpuMs)} ms, ${versions.size} distinct versions`,
      );
    }
  } finally {
    for (const w of workers) w.proc.disconnect();
  }
  const hwm = readMemory(agent.pid).hwmMiB;
  const { cpuProfile } = await agent.stop();

  const report = new Report(
    'mesh-push',
    `npm run bench:mesh-push -- --scope ${opts.scope} --change ${opts.change}`,
  );
  report.meta(
    `setup: agent process (SQLite store), ${opts.services} services of 2 instances and "${TARGET}" (v1, v2) with a DestinationRule and a VirtualService; ${opts.proxies} sidecar proxies (MeshSubscriber: own stream, NDJSON parsed, snapshot walked, ACK POSTed; no persistence) in ${opts.workers} worker processes, ${opts.scope === 'declared' ? `each declaring upstreams "${TARGET}" and one other service` : 'declaring no upstreams (every service in every snapshot)'}, spread over the ${opts.services} services`,
  );
  report.meta(
    `change: ${opts.change === 'vs' ? 'POST /api/v1/mesh/apply of the VirtualService with new weights' : `PUT /api/v1/instances of a new "${TARGET}" instance (its clusters' endpoints change)`}; latency = the agent answered the proxy's ACK of its new version − just before the apply is sent (shared clock, error ±${fmt(skew)} ms); ${opts.changes} measured changes after ${opts['warmup-changes']} warm-up ones, 0.5 s apart`,
  );
  report.quiet(busy);
  const med = (f: (c: ChangeResult) => number): string => fmt(median(results.map(f)));
  report.section(
    `${opts.change === 'vs' ? 'VirtualService' : 'Instance'} change → every proxy ACKed its new version (median over changes)`,
    table(
      [
        'proxies',
        'changes',
        'p50 ms',
        'p99 ms',
        'max ms',
        'p99 per change',
        'missing',
        'apply ms',
        'compile ms',
        'agent CPU ms',
        'proxies CPU ms',
        'snapshots',
      ],
      [
        [
          opts.proxies,
          results.length,
          med((c) => c.lat.p50),
          med((c) => c.lat.p99),
          med((c) => c.lat.max),
          results.map((c) => fmt(c.lat.p99)).join(' / '),
          results.reduce((a, c) => a + c.missing, 0),
          med((c) => c.applyMs),
          med((c) => c.compileMs),
          med((c) => c.agentCpuMs),
          med((c) => c.workersCpuMs),
          med((c) => c.versions),
        ],
      ],
    ),
  );
  report.section(
    'Agent memory',
    table(
      ['agent RSS MiB', 'value'],
      [
        ['catalog and resources, no proxy', fmt(rssBefore)],
        [`${opts.proxies} proxies connected, 1 s after the last first ACK`, fmt(rssConnected)],
        ['peak sampled during the changes', fmt(rssPeak)],
        ['high-water mark (VmHWM)', fmt(hwm)],
      ],
    ),
  );
  const p99 = median(results.map((c) => c.lat.p99));
  report.text(
    `Bar p99 <= 1,000 ms: ${p99 <= 1000 ? 'met' : 'NOT met'}; goal 200 ms: ${p99 <= 200 ? 'met' : 'not met'} (${fmt(p99)} ms).`,
  );
  if (cpuProfile !== undefined) {
    report.section(
      'Agent CPU profile during the changes (apply sent → every proxy ACKed)',
      profileTables(summarizeProfile(cpuProfile, 25, windows)),
    );
  }
  report.finish();
});
