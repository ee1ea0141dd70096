/**
 * @module bench:registrations: durable registrations per second, the embedded agent (SQLite WAL,
 * synchronous=FULL, group commit) against etcd 3.4 `put` with a lease, same records, same
 * concurrency, same count, A B C rounds in one run.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startAgent } from '../lib/agent.js';
import { runMain } from '../lib/cleanup.js';
import { monoMicros, profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { ensureEtcd, etcdVersion, startEtcd } from '../lib/etcd.js';
import { alternate, closedLoop, flags, type ClosedLoopResult, type Peer } from '../lib/load.js';
import { CpuWindow, REPO_ROOT } from '../lib/proc.js';
import { agentPool, putInstance, registration } from '../lib/registry-load.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { median, percentile } from '../lib/stats.js';

const opts = flags('npm run bench:registrations -- [flags]', {
  records: { default: 20_000, help: 'timed registrations per round and peer' },
  warmup: { default: 2_000, help: 'untimed registrations before each timed run' },
  concurrency: { default: 64, help: 'requests in flight' },
  rounds: { default: 3, help: 'A B C rounds' },
  services: { default: 100, help: 'records are spread over this many services' },
  ttl: { default: 60, help: 'TTL in seconds (agent TTL check, etcd lease TTL); > a round' },
  peers: {
    default: 'agent,etcd-lease-per-record,etcd-shared-lease,etcd-gateway-lease-per-record',
    help: 'which peers to run',
  },
  'quiet-wait': { default: 300, help: 'seconds to wait for other work on the machine to settle' },
  'cpu-prof': { default: false, help: 'profile the agent (last round) with --cpu-prof' },
});

interface RoundResult {
  readonly load: ClosedLoopResult;
  readonly serverCores: number;
  readonly serverCpuSeconds: number;
  readonly driverCores: number;
  readonly stored: number;
  /** [from, to] µs (monotonic) of the timed part, to slice a CPU profile. */
  readonly window: [number, number];
}

const PREFIX = '/meshwork/instances/';

/** Record `i` of a run: the same service, id and JSON value for every peer. */
function record(i: number, tag: string): { key: string; json: string } {
  const service = `svc-${i % opts.services}`;
  const id = `${service}-${tag}-${i}`;
  const json = JSON.stringify(registration(service, id, i, [{ ttl: `${opts.ttl}s` }]));
  return { key: `${PREFIX}${service}/${id}`, json };
}

/** Runs the warm-up, then the timed loop with CPU accounting for the server and this driver. */
async function measure(
  serverPid: number,
  op: (i: number, tag: string) => Promise<boolean>,
): Promise<Omit<RoundResult, 'stored'>> {
  const warm = await closedLoop(opts.warmup, opts.concurrency, (i) => op(i, 'warm'));
  if (warm.errors > 0) throw new Error(`warm-up failed: ${warm.firstError}`);
  const cpu = new CpuWindow(serverPid);
  const driver0 = process.cpuUsage();
  const mono0 = monoMicros();
  const load = await closedLoop(opts.records, opts.concurrency, (i) => op(i, 'run'));
  const window: [number, number] = [mono0, monoMicros()];
  const server = cpu.read();
  const d = process.cpuUsage(driver0);
  if (load.errors > 0) throw new Error(`${load.errors} operations failed: ${load.firstError}`);
  return {
    load,
    serverCores: server.cores,
    serverCpuSeconds: server.cpuSeconds,
    driverCores: (d.user + d.system) / 1000 / load.elapsedMs,
    window,
  };
}

let lastWindow: [number, number] = [0, 0];
let profiled: { file: string; window: [number, number] } | undefined;

const agentPeer: Peer<RoundResult> = {
  name: 'agent',
  async run(round) {
    const profDir = join(REPO_ROOT, 'bench', '.results', 'profiles');
    const profile = opts['cpu-prof'] && round === opts.rounds;
    if (profile) mkdirSync(profDir, { recursive: true });
    const agent = await startAgent(profile ? { cpuProfDir: profDir } : {});
    const pool = agentPool(agent.url, opts.concurrency);
    try {
      const r = await measure(agent.pid, (i, tag) => putInstance(pool, record(i, tag).json));
      lastWindow = r.window;
      const info = (await (await fetch(`${agent.url}/api/v1/agent`)).json()) as {
        instances: number;
      };
      return { ...r, stored: info.instances };
    } finally {
      await pool.close();
      const { cpuProfile } = await agent.stop();
      if (cpuProfile !== undefined) {
        log(`agent CPU profile: ${cpuProfile}`);
        profiled = { file: cpuProfile, window: lastWindow };
      }
    }
  },
};

/** etcd: `put` of the same key/value, with one lease per record or one shared lease. */
function etcdPeer(name: string, leasePerRecord: boolean): Peer<RoundResult> {
  return {
    name,
    async run() {
      const etcd = await startEtcd();
      const client = new Etcd3({ hosts: etcd.endpoint });
      try {
        // The shared lease is kept alive (a client session, as etcd's own naming package does).
        const shared = leasePerRecord ? undefined : client.lease(opts.ttl);
        await shared?.grant();
        const r = await measure(etcd.pid, async (i, tag) => {
          const { key, json } = record(i, tag);
          // Without autoKeepAlive the lease is only granted (LeaseGrant, a raft write of its own)
          // and attached to the put; renewing it would be the heartbeat, measured elsewhere.
          const lease = shared ?? client.lease(opts.ttl, { autoKeepAlive: false });
          await lease.put(key).value(json);
          return true;
        });
        const stored = await client.getAll().prefix(PREFIX).count();
        await shared?.revoke();
        return { ...r, stored };
      } finally {
        client.close();
        await etcd.stop();
      }
    },
  };
}

/**
 * etcd through its JSON gateway (/v3/lease/grant, /v3/kv/put) driven by the same undici Pool as
 * the agent: a cross-check that the grpc-js client's CPU is not what limits etcd on 2 cores.
 */
const etcdGatewayPeer: Peer<RoundResult> = {
  name: 'etcd-gateway-lease-per-record',
  async run() {
    const etcd = await startEtcd();
    const pool = agentPool(etcd.endpoint, opts.concurrency);
    const post = async (path: string, body: object): Promise<Record<string, unknown>> => {
      const res = await pool.request({
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const json = (await res.body.json()) as Record<string, unknown>;
      if (res.statusCode !== 200)
        throw new Error(`${path}: ${res.statusCode} ${JSON.stringify(json)}`);
      return json;
    };
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    try {
      const r = await measure(etcd.pid, async (i, tag) => {
        const { key, json } = record(i, tag);
        const { ID } = await post('/v3/lease/grant', { TTL: String(opts.ttl) });
        await post('/v3/kv/put', { key: b64(key), value: b64(json), lease: ID });
        return true;
      });
      const count = await post('/v3/kv/range', {
        key: b64(PREFIX),
        range_end: b64(
          PREFIX.slice(0, -1) + String.fromCharCode(PREFIX.charCodeAt(PREFIX.length - 1) + 1),
        ),
        count_only: true,
      });
      return { ...r, stored: Number(count.count ?? 0) };
    } finally {
      await pool.close();
      await etcd.stop();
    }
  },
};

runMain(async () => {
  const busy = await settle(opts['quiet-wait']);
  const wanted = new Set(opts.peers.split(','));
  if ([...wanted].some((p) => p.startsWith('etcd'))) ensureEtcd();
  const all = [
    agentPeer,
    etcdPeer('etcd-lease-per-record', true),
    etcdPeer('etcd-shared-lease', false),
    etcdGatewayPeer,
  ];
  const peers = all.filter((p) => wanted.has(p.name));
  if (peers.length === 0) throw new Error(`no known peer in --peers ${opts.peers}`);
  log(
    `registrations: ${opts.records} per round (+${opts.warmup} warm-up), ${opts.concurrency} in flight, ${opts.rounds} rounds`,
  );
  const results = await alternate(peers, opts.rounds, (peer, round, r) => {
    log(
      `round ${round} ${peer}: ${fmt(r.load.ops / (r.load.elapsedMs / 1000))}/s, server ${fmt(r.serverCores)} cores, driver ${fmt(r.driverCores)} cores`,
    );
    if (r.stored !== opts.records + opts.warmup)
      throw new Error(`${peer} holds ${r.stored} records, expected ${opts.records + opts.warmup}`);
  });

  const rate = (r: RoundResult): number => r.load.ops / (r.load.elapsedMs / 1000);
  const agentRates = results.get('agent')?.map(rate) ?? [];
  const rows = peers.map((p) => {
    const rs = results.get(p.name) ?? [];
    const rates = rs.map(rate);
    const lat = (q: number): number => median(rs.map((r) => percentile(r.load.latenciesMs, q)));
    const cpuUs = median(rs.map((r) => (r.serverCpuSeconds / r.load.ops) * 1e6));
    return [
      p.name,
      fmt(median(rates)),
      rates.map((x) => fmt(x)).join(' / '),
      agentRates.length > 0 ? ratio(median(agentRates), median(rates)) : 'n/a',
      fmt(lat(50)),
      fmt(lat(99)),
      fmt(median(rs.map((r) => r.serverCores))),
      fmt(cpuUs),
      fmt(median(rs.map((r) => r.driverCores))),
    ];
  });

  const report = new Report('registrations', 'npm run bench:registrations');
  report.quiet(busy);
  report.meta(
    `load: ${opts.records} registrations per round and peer after ${opts.warmup} warm-up, ${opts.concurrency} in flight (closed loop), ${opts.rounds} rounds in order ${peers.map((p) => p.name).join(' → ')}; fresh server and data dir per round`,
  );
  report.meta(
    `records: ${opts.services} services, ~${record(0, 'run').json.length} B JSON each (2 tags, 3 meta, TTL ${opts.ttl}s); etcd key ${PREFIX}<service>/<id> with the same JSON value`,
  );
  report.meta(
    `peers: meshwork agent (SQLite WAL, synchronous=FULL, group commit) over undici Pool(${opts.concurrency}); etcd ${etcdVersion()} single member via etcd3 (grpc-js, one HTTP/2 channel)`,
  );
  report.section(
    'Durable registrations per second (median of rounds)',
    table(
      [
        'peer',
        'reg/s',
        'rounds (reg/s)',
        'agent ÷ peer',
        'p50 ms',
        'p99 ms',
        'server CPU (cores)',
        'server CPU µs/reg',
        'driver CPU (cores)',
      ],
      rows,
    ),
  );
  report.text(
    'Latencies are closed-loop (they include queueing behind the other requests in flight); the throughput is the headline.',
  );
  if (profiled !== undefined) {
    report.section(
      'Agent CPU profile, timed part of the last round',
      profileTables(summarizeProfile(profiled.file, 25, [profiled.window])),
    );
  }
  report.finish();
});
