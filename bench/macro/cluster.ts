/**
 * @module bench:cluster: cluster mode (two agents with `--store etcd` on one single-member etcd).
 * Part 1: durable registrations per second through the two agents against etcd 3.4 lease grant +
 * put per record from the etcd3 client, same records, same concurrency, A B rounds in one run.
 * Part 2: propagation: 500 SSE watchers on agent B, one change at a time written through agent
 * A; per watcher, the time from just before the PUT is sent to A until the event is read from B.
 */
import { fileURLToPath } from 'node:url';
import { Etcd3, type Watcher } from 'etcd3';
import { startAgent, profiling, scrapeMetric, type AgentHandle } from '../lib/agent.js';
import { runMain } from '../lib/cleanup.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import {
  ensureEtcd,
  etcdDelta,
  etcdVersion,
  scrapeEtcdMetrics,
  startEtcd,
  type EtcdHandle,
} from '../lib/etcd.js';
import {
  alternate,
  closedLoop,
  flags,
  sleep,
  type ClosedLoopResult,
  type Peer,
} from '../lib/load.js';
import { clockSkew, CpuWindow, forkWorker, request, type Child } from '../lib/proc.js';
import {
  agentPool,
  putInstance,
  registerMany,
  registration,
  timedChange,
} from '../lib/registry-load.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { median, percentile, sharedNow, summarize, type Summary } from '../lib/stats.js';

const opts = flags('npm run bench:cluster -- [flags]', {
  parts: { default: 'registrations,propagation', help: 'registrations, propagation or both' },
  records: { default: 10_000, help: 'timed registrations per round and peer' },
  warmup: { default: 1_000, help: 'untimed registrations before each timed run' },
  concurrency: { default: 64, help: 'registrations in flight (split evenly over the agents)' },
  rounds: { default: 3, help: 'A B rounds' },
  services: { default: 100, help: 'records are spread over this many services' },
  ttl: { default: 60, help: 'TTL in seconds (agent TTL check, etcd lease TTL); > a round' },
  watchers: { default: 500, help: 'SSE watchers of the service on agent B' },
  workers: { default: 2, help: 'worker processes holding the watchers on B' },
  'watchers-a': { default: 10, help: 'SSE watchers on agent A too (the writer), for comparison' },
  instances: { default: 10, help: 'instances of the watched service before the changes' },
  changes: { default: 50, help: 'measured changes (one at a time)' },
  'warmup-changes': { default: 5, help: 'untimed changes first (JIT warm-up)' },
  'gap-ms': { default: 200, help: 'pause between one change reaching every watcher and the next' },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': {
    default: false,
    help: 'profile both agents (last registrations round; the propagation run)',
  },
});

/** The agents' key prefix (their default) and instance keys; the etcd peer writes the same. */
const PREFIX = '/meshwork/';
const INSTANCE_PREFIX = `${PREFIX}i/`;

/** Record `i` of a run: the same service, id and registration JSON for every peer. */
function record(i: number, tag: string): { key: string; json: string } {
  const service = `svc-${i % opts.services}`;
  const id = `${service}-${tag}-${i}`;
  const json = JSON.stringify(registration(service, id, i, [{ ttl: `${opts.ttl}s` }]));
  return { key: `${INSTANCE_PREFIX}${id}`, json };
}

/** One etcd and two agents on it (A writes, B watches); stopped in reverse order. */
interface Cluster {
  readonly etcd: EtcdHandle;
  readonly a: AgentHandle;
  readonly b: AgentHandle;
  stop(): Promise<{ profiles: { a?: string; b?: string } }>;
}

async function startCluster(profile: boolean): Promise<Cluster> {
  const etcd = await startEtcd();
  const a = await startAgent({
    etcdEndpoint: etcd.endpoint,
    nodeName: 'bench-a',
    ...profiling(profile),
  });
  const b = await startAgent({
    etcdEndpoint: etcd.endpoint,
    nodeName: 'bench-b',
    ...profiling(profile),
  });
  return {
    etcd,
    a,
    b,
    stop: async () => {
      const pb = await b.stop();
      const pa = await a.stop();
      await etcd.stop();
      return {
        profiles: {
          ...(pa.cpuProfile === undefined ? {} : { a: pa.cpuProfile }),
          ...(pb.cpuProfile === undefined ? {} : { b: pb.cpuProfile }),
        },
      };
    },
  };
}

// ---- part 1: registrations ---------------------------------------------------------------

interface RoundResult {
  readonly load: ClosedLoopResult;
  readonly etcdCores: number;
  readonly etcdCpuSeconds: number;
  /** Both agents together (0 for the etcd peer). */
  readonly agentCores: number;
  readonly agentCpuSeconds: number;
  readonly driverCores: number;
  /** etcd's counters over the timed part. */
  readonly etcd: Map<string, number>;
  readonly stored: number;
  /** Bytes of one stored instance value (agent: its Instance JSON; etcd peer: the body). */
  readonly valueBytes: number;
  readonly window: [number, number];
}

/** Warm-up, then the timed loop with CPU accounting for etcd, the agents and this driver. */
async function measure(
  etcd: EtcdHandle,
  agentPids: readonly number[],
  op: (i: number, tag: string) => Promise<boolean>,
): Promise<Omit<RoundResult, 'stored' | 'valueBytes'>> {
  const warm = await closedLoop(opts.warmup, opts.concurrency, (i) => op(i, 'warm'));
  if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.firstError}`);
  const m0 = await scrapeEtcdMetrics(etcd.endpoint);
  const etcdCpu = new CpuWindow(etcd.pid);
  const agentCpu = agentPids.map((pid) => new CpuWindow(pid));
  const driver0 = process.cpuUsage();
  const mono0 = monoMicros();
  const load = await closedLoop(opts.records, opts.concurrency, (i) => op(i, 'run'));
  const window: [number, number] = [mono0, monoMicros()];
  const e = etcdCpu.read();
  const agents = agentCpu.map((c) => c.read());
  const d = process.cpuUsage(driver0);
  const m1 = await scrapeEtcdMetrics(etcd.endpoint);
  if (load.errors > 0) throw new Error(`${load.errors} operations failed: ${load.firstError}`);
  const agentCpuSeconds = agents.reduce((s, x) => s + x.cpuSeconds, 0);
  return {
    load,
    etcdCores: e.cores,
    etcdCpuSeconds: e.cpuSeconds,
    agentCores: agentCpuSeconds / e.wallSeconds,
    agentCpuSeconds,
    driverCores: (d.user + d.system) / 1000 / load.elapsedMs,
    etcd: etcdDelta(m0, m1),
    window,
  };
}

/** Instances the agent lists (GET /api/v1/agent). */
async function agentInstances(url: string): Promise<number> {
  const info = (await (await fetch(`${url}/api/v1/agent`)).json()) as { instances: number };
  return info.instances;
}

const agentProfiles: { a?: string; b?: string; window?: [number, number] } = {};

/** Two agents on one etcd; even records go through A, odd ones through B. */
const agentsPeer: Peer<RoundResult> = {
  name: 'agents (2, --store etcd)',
  async run(round) {
    const profile = opts['cpu-prof'] && round === opts.rounds;
    const cluster = await startCluster(profile);
    const half = Math.max(1, Math.floor(opts.concurrency / 2));
    const pools = [agentPool(cluster.a.url, half), agentPool(cluster.b.url, half)] as const;
    let window: [number, number] = [0, 0];
    try {
      const r = await measure(cluster.etcd, [cluster.a.pid, cluster.b.pid], (i, tag) =>
        putInstance(pools[i % 2] as (typeof pools)[0], record(i, tag).json),
      );
      window = r.window;
      // Each agent holds every record, whichever agent it went through (its watch delivered it).
      const counts = [await agentInstances(cluster.a.url), await agentInstances(cluster.b.url)];
      if (counts[0] !== counts[1])
        throw new Error(`agents disagree: A ${counts[0]}, B ${counts[1]}`);
      const client = new Etcd3({ hosts: cluster.etcd.endpoint });
      let valueBytes = 0;
      try {
        const one = await client.getAll().prefix(INSTANCE_PREFIX).limit(1).buffers();
        valueBytes = Object.values(one)[0]?.length ?? 0;
      } finally {
        client.close();
      }
      return { ...r, stored: counts[0] ?? 0, valueBytes };
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      const { profiles } = await cluster.stop();
      if (profile) Object.assign(agentProfiles, profiles, { window });
    }
  },
};

/** etcd alone: LeaseGrant, then Put of the registration JSON with that lease, per record. */
const etcdPeer: Peer<RoundResult> = {
  name: 'etcd-lease-per-record',
  async run() {
    const etcd = await startEtcd();
    const client = new Etcd3({ hosts: etcd.endpoint });
    try {
      const r = await measure(etcd, [], async (i, tag) => {
        const { key, json } = record(i, tag);
        // Granted only (no keep-alive): renewing the lease is the heartbeat, not measured here.
        await client.lease(opts.ttl, { autoKeepAlive: false }).put(key).value(json);
        return true;
      });
      const stored = await client.getAll().prefix(INSTANCE_PREFIX).count();
      return { ...r, stored, valueBytes: record(0, 'run').json.length };
    } finally {
      client.close();
      await etcd.stop();
    }
  },
};

async function registrations(report: Report): Promise<void> {
  const peers = [agentsPeer, etcdPeer];
  log(
    `registrations: ${opts.records} per round (+${opts.warmup} warm-up), ${opts.concurrency} in flight, ${opts.rounds} rounds`,
  );
  const rate = (r: RoundResult): number => r.load.ops / (r.load.elapsedMs / 1000);
  const results = await alternate(peers, opts.rounds, (peer, round, r) => {
    log(
      `round ${round} ${peer}: ${fmt(rate(r))}/s, etcd ${fmt(r.etcdCores)} cores, agents ${fmt(r.agentCores)} cores, driver ${fmt(r.driverCores)} cores`,
    );
    if (r.stored !== opts.records + opts.warmup)
      throw new Error(`${peer} holds ${r.stored} records, expected ${opts.records + opts.warmup}`);
  });
  const agentRates = results.get(agentsPeer.name)?.map(rate) ?? [];
  const etcdRates = results.get(etcdPeer.name)?.map(rate) ?? [];
  const rows = peers.map((p) => {
    const rs = results.get(p.name) ?? [];
    const rates = rs.map(rate);
    const lat = (q: number): number => median(rs.map((r) => percentile(r.load.latenciesMs, q)));
    const perReg = (f: (r: RoundResult) => number): number =>
      median(rs.map((r) => (f(r) / r.load.ops) * 1e6));
    const isAgents = p === agentsPeer;
    return [
      p.name,
      fmt(median(rates)),
      rates.map((x) => fmt(x)).join(' / '),
      ratio(median(rates), median(etcdRates)),
      fmt(lat(50)),
      fmt(lat(99)),
      fmt(median(rs.map((r) => r.etcdCores))),
      fmt(perReg((r) => r.etcdCpuSeconds)),
      isAgents ? fmt(median(rs.map((r) => r.agentCores))) : '-',
      isAgents ? fmt(perReg((r) => r.agentCpuSeconds)) : '-',
      fmt(median(rs.map((r) => r.driverCores))),
    ];
  });
  // What etcd did per registration, from its own counters (median over rounds).
  const counters: [string, string][] = [
    ['raft proposals committed', 'etcd_server_proposals_committed_total'],
    ['LeaseGrant', 'etcd_debugging_lease_granted_total'],
    ['Txn RPCs', 'grpc_server_handled_total{grpc_method="Txn"}'],
    ['Put RPCs', 'grpc_server_handled_total{grpc_method="Put"}'],
    ['Range RPCs', 'grpc_server_handled_total{grpc_method="Range"}'],
    ['keys put (mvcc)', 'etcd_mvcc_put_total'],
    ['WAL fsyncs', 'etcd_disk_wal_fsync_duration_seconds_count'],
    ['backend commits', 'etcd_disk_backend_commit_duration_seconds_count'],
  ];
  const perRecord = (name: string, metric: string): unknown[] => [
    name,
    ...peers.map((p) =>
      fmt(median((results.get(p.name) ?? []).map((r) => (r.etcd.get(metric) ?? 0) / r.load.ops))),
    ),
  ];
  const fsyncMs = (p: Peer<RoundResult>): string =>
    fmt(
      median(
        (results.get(p.name) ?? []).map(
          (r) =>
            ((r.etcd.get('etcd_disk_wal_fsync_duration_seconds_sum') ?? 0) /
              (r.etcd.get('etcd_disk_wal_fsync_duration_seconds_count') ?? 1)) *
            1000,
        ),
      ),
    );
  const target = median(agentRates) / median(etcdRates);

  report.meta(
    `registrations: ${opts.records} per round and peer after ${opts.warmup} warm-up, ${opts.concurrency} in flight (closed loop), ${opts.rounds} rounds in order ${peers.map((p) => p.name).join(' → ')}; fresh etcd (and agents) per round`,
  );
  report.meta(
    `records: ${opts.services} services, ~${record(0, 'run').json.length} B registration JSON each (2 tags, 3 meta, one TTL check of ${opts.ttl}s)`,
  );
  report.meta(
    `agents: two \`meshwork agent --store etcd\` processes on the one etcd; the driver sends even records to A and odd ones to B over an undici Pool(${Math.floor(opts.concurrency / 2)}) each; 200 means etcd committed it and the agent's own watch delivered it. etcd peer: etcd3 client (grpc-js, one channel): \`LeaseGrant\` TTL ${opts.ttl}s, then \`Put\` of the same registration JSON with that lease at ${INSTANCE_PREFIX}<id>`,
  );
  report.section(
    'Durable registrations per second (median of rounds)',
    table(
      [
        'peer',
        'reg/s',
        'rounds (reg/s)',
        '÷ etcd',
        'p50 ms',
        'p99 ms',
        'etcd CPU (cores)',
        'etcd CPU µs/reg',
        'agents CPU (cores, A+B)',
        'agents CPU µs/reg',
        'driver CPU (cores)',
      ],
      rows,
    ),
  );
  report.text(
    `Target ≥ 0.7x etcd: ${target >= 0.7 ? 'met' : 'NOT met'} (${target.toFixed(2)}x). Latencies are closed-loop (queueing included); throughput is the headline.`,
  );
  report.section(
    'What etcd did per registration (its /metrics, timed part, median of rounds)',
    table(
      ['per registration', ...peers.map((p) => p.name)],
      [
        ...counters.map(([name, metric]) => perRecord(name, metric)),
        ['WAL fsync mean ms', ...peers.map(fsyncMs)],
        [
          'stored value bytes',
          ...peers.map((p) => fmt(results.get(p.name)?.[0]?.valueBytes ?? Number.NaN)),
        ],
      ],
    ),
  );
  for (const [name, file] of [
    ['A', agentProfiles.a],
    ['B', agentProfiles.b],
  ] as const) {
    if (file === undefined || agentProfiles.window === undefined) continue;
    report.section(
      `Agent ${name} CPU profile, timed part of the last registrations round`,
      profileTables(summarizeProfile(file, 25, [agentProfiles.window])),
    );
  }
}

// ---- part 2: propagation -----------------------------------------------------------------

const WORKER = fileURLToPath(new URL('../lib/workers/watchers.ts', import.meta.url));
const SERVICE = 'svc';

interface ChangeResult {
  readonly onB: number[];
  readonly onA: number[];
  readonly missingB: number;
  readonly putMs: number;
  /** A plain etcd3 watch in this driver: when etcd's event for the revision arrived. */
  readonly etcdWatchMs: number;
}

/** Forks `count` SSE watchers of SERVICE on `url` over `n` workers; resolves once all have their snapshot. */
async function watchersOn(url: string, count: number, n: number, name: string): Promise<Child[]> {
  const per = Math.ceil(count / n);
  const counts = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(per, count - i * per)));
  const workers = counts
    .filter((c) => c > 0)
    .map((_, i) => forkWorker(`watchers-${name}-${i}`, WORKER));
  await Promise.all(
    workers.map((w, i) =>
      request(
        w,
        { type: 'start', url, service: SERVICE, count: counts[i], mode: 'sse' },
        'ready',
        60_000,
      ),
    ),
  );
  return workers;
}

async function collect(workers: readonly Child[], index: number): Promise<(number | null)[]> {
  const got = await Promise.all(
    workers.map((w) =>
      request<{ times: (number | null)[] }>(
        w,
        { type: 'collect', index, timeoutMs: 10_000 },
        'collected',
      ),
    ),
  );
  return got.flatMap((c) => c.times);
}

async function propagation(report: Report): Promise<void> {
  const cluster = await startCluster(opts['cpu-prof']);
  const { a, b, etcd } = cluster;
  const workersB: Child[] = [];
  const workersA: Child[] = [];
  const client = new Etcd3({ hosts: etcd.endpoint });
  let watcher: Watcher | undefined;
  const results: ChangeResult[] = [];
  const windows: [number, number][] = [];
  let skew = 0;
  let cpu: { etcd: number; a: number; b: number; driver: number } | undefined;
  let profiles: { a?: string; b?: string } = {};
  try {
    await registerMany(a.url, opts.instances, (i) =>
      registration(SERVICE, `${SERVICE}-${i}`, i, []),
    );
    workersB.push(...(await watchersOn(b.url, opts.watchers, opts.workers, 'b')));
    if (opts['watchers-a'] > 0)
      workersA.push(...(await watchersOn(a.url, opts['watchers-a'], 1, 'a')));
    const streams = await scrapeMetric(b.url, 'meshwork_registry_watchers', 'kind="stream"');
    log(`propagation: ${opts.watchers} watchers ready on B (B counts ${streams} streams)`);
    skew = await clockSkew([...workersB, ...workersA]);

    // The floor: etcd's own watch event, read by a plain etcd3 watcher in this (idle) process.
    const etcdSeen = new Map<number, number>();
    watcher = await client.watch().prefix(INSTANCE_PREFIX).create();
    watcher.on('data', (res) => {
      const t = sharedNow();
      for (const e of res.events) etcdSeen.set(Number(e.kv.mod_revision), t);
    });

    const pool = agentPool(a.url, 1);
    const cpuEtcd = new CpuWindow(etcd.pid);
    const cpuA = new CpuWindow(a.pid);
    const cpuB = new CpuWindow(b.pid);
    const driver0 = process.cpuUsage();
    const wall0 = performance.now();
    try {
      for (let k = 1 - opts['warmup-changes']; k <= opts.changes; k++) {
        await sleep(opts['gap-ms']);
        const n = k + opts['warmup-changes'];
        const body = JSON.stringify(registration(SERVICE, `${SERVICE}-change-${n}`, 1000 + n, []));
        const { index, t0, mono0, putMs } = await timedChange(pool, body);
        const [timesB, timesA] = await Promise.all([
          collect(workersB, index),
          collect(workersA, index),
        ]);
        const onB = timesB.filter((t): t is number => t !== null).map((t) => t - t0);
        const onA = timesA.filter((t): t is number => t !== null).map((t) => t - t0);
        const etcdWatchMs = (etcdSeen.get(index) ?? Number.NaN) - t0;
        const warm = k <= 0;
        const s = summarize(onB);
        log(
          `${warm ? 'warm-up change' : `change ${k}`} (index ${index}): B p50 ${fmt(s.p50)} ms, p99 ${fmt(s.p99)} ms, max ${fmt(s.max)} ms, missing ${timesB.length - onB.length}; PUT to A ${fmt(putMs)} ms, etcd watch ${fmt(etcdWatchMs)} ms`,
        );
        if (warm) continue;
        windows.push([mono0, monoMicros()]);
        results.push({ onB, onA, missingB: timesB.length - onB.length, putMs, etcdWatchMs });
      }
    } finally {
      await pool.close();
    }
    const wallS = (performance.now() - wall0) / 1000;
    const d = process.cpuUsage(driver0);
    cpu = {
      etcd: cpuEtcd.read().cores,
      a: cpuA.read().cores,
      b: cpuB.read().cores,
      driver: (d.user + d.system) / 1e6 / wallS,
    };
  } finally {
    await watcher?.cancel().catch(() => undefined);
    client.close();
    await Promise.all([...workersB, ...workersA].map((w) => w.stop()));
    profiles = (await cluster.stop()).profiles;
  }

  const all = (f: (c: ChangeResult) => number[]): Summary => summarize(results.flatMap(f));
  const one = (f: (c: ChangeResult) => number): Summary => summarize(results.map(f));
  const b99 = results.map((c) => summarize(c.onB).p99);
  const row = (name: string, n: number, s: Summary): unknown[] => [
    name,
    n,
    s.n,
    fmt(s.p50),
    fmt(s.p90),
    fmt(s.p99),
    fmt(s.max),
  ];
  const onB = all((c) => c.onB);
  report.meta(
    `propagation: one etcd, agents A and B (\`--store etcd\`); service "${SERVICE}" with ${opts.instances} instances; ${opts.watchers} SSE watchers (\`GET /api/v1/watch?service=${SERVICE}\`, each on its own socket) on B in ${opts.workers} worker processes${opts['watchers-a'] > 0 ? `, ${opts['watchers-a']} more on A in one worker process` : ''}; ${opts.changes} measured changes after ${opts['warmup-changes']} warm-up ones, one at a time, ${opts['gap-ms']} ms between one change reaching every watcher and the next`,
  );
  report.meta(
    "change: PUT /api/v1/instances of a new instance of the service to A (A answers once etcd committed it and A's watch delivered it); latency = receipt of the frame with that index in the watcher − just before the PUT is sent, on performance.timeOrigin + performance.now() in every process",
  );
  report.section(
    'Change written through A → event read from a watcher (all changes × watchers pooled)',
    table(
      ['path', 'watchers', 'samples', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      [
        row(
          "PUT to A answered (etcd commit + A's watch event)",
          1,
          one((c) => c.putMs),
        ),
        row(
          'etcd watch event in a plain etcd3 client (the floor)',
          1,
          one((c) => c.etcdWatchMs),
        ),
        ...(opts['watchers-a'] > 0
          ? [
              row(
                'SSE watchers on A (the writer)',
                opts['watchers-a'],
                all((c) => c.onA),
              ),
            ]
          : []),
        row('**SSE watchers on B** (target)', opts.watchers, onB),
      ],
    ),
  );
  report.text(
    [
      `Per change on B: p99 median ${fmt(median(b99))} ms, worst ${fmt(Math.max(...b99))} ms; max (last watcher) median ${fmt(median(results.map((c) => summarize(c.onB).max)))} ms. Missing events: ${results.reduce((s, c) => s + c.missingB, 0)}. Clock error between processes: ±${fmt(skew)} ms.`,
      cpu === undefined
        ? ''
        : `CPU over the changes (cores, gaps included): etcd ${fmt(cpu.etcd)}, agent A ${fmt(cpu.a)}, agent B ${fmt(cpu.b)}, driver ${fmt(cpu.driver)}.`,
      `**Target p99 < 100 ms on B: ${onB.p99 < 100 ? 'met' : 'NOT met'}** (${fmt(onB.p99)} ms over ${onB.n} samples).`,
    ]
      .filter((l) => l !== '')
      .join('\n'),
  );
  for (const [name, file] of [
    ['A', profiles.a],
    ['B', profiles.b],
  ] as const) {
    if (file === undefined) continue;
    report.section(
      `Agent ${name} CPU profile during the changes (PUT sent → every watcher has it)`,
      profileTables(summarizeProfile(file, 25, windows)),
    );
  }
}

runMain(async () => {
  const busy = await settle(opts['quiet-wait']);
  ensureEtcd();
  const parts = new Set(opts.parts.split(','));
  const args = process.argv.slice(2).join(' ');
  const report = new Report('cluster', `npm run bench:cluster${args === '' ? '' : ` -- ${args}`}`);
  report.quiet(busy);
  report.meta(`etcd ${etcdVersion()}, one member, data dir in a temp dir, 127.0.0.1 free ports`);
  if (parts.has('registrations')) await registrations(report);
  if (parts.has('propagation')) await propagation(report);
  report.finish();
});
