/**
 * @module bench:sidecar: a request crossing two sidecars against the same chain of two nginx.
 * One node:http upstream (13 B body) and three chains to it, in one run: direct (the floor),
 * the nginx pair (nginx A → nginx B → upstream, `proxy_pass` with upstream keepalive, one worker
 * each) and the sidecar pair (sidecar A's outbound with `Host: <service>` → sidecar B's inbound →
 * the upstream as B's app; real `meshwork sidecar` processes from dist/, B registered with a real
 * agent, A routing on the agent's snapshot). wrk for maximum throughput in mirrored rounds (the
 * two pairs back to back in every round; the target is the median of their round-by-round
 * ratios); then latency at a fixed rate (open loop) for the three chains, with each sidecar's CPU
 * per 1,000 rps and RSS. `--cpu-prof` adds sidecar A's and B's CPU profiles over their wrk rounds.
 * `--observability` (issue 21) compares, in one run, two sidecar pairs instead: one with Istio
 * metrics, tracing at the default 1% (to an OTLP/HTTP receiver in this process) and access logs
 * at their default sample (to a file) on, the other with all of them and the call graph's edge
 * counts off; the target is the CPU per request of the first against the second.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { profiling } from '../lib/agent.js';
import { createRegistryClient } from '../../src/client/registry-client.js';
import type { AgentHandle } from '../lib/agent.js';
import { makeBenchCerts } from '../lib/bench-certs.js';
import {
  PROXY_LOAD_FLAGS,
  startUpstream,
  UPSTREAM_BODY,
  writeNginxConfig,
  type NginxTls,
} from '../lib/gateway-setup.js';
import { makeTempDir, runMain } from '../lib/cleanup.js';
import { startOtlpSink } from '../lib/otlp-sink.js';
import { parseObserverParts } from '../lib/sidecar-pair.js';
import { alternate, flags, sleep, together, type Peer } from '../lib/load.js';
import { fixedRatePeer, loadPeer, type LoadRound } from '../lib/load-peer.js';
import {
  CpuWindow,
  freePort,
  readMemory,
  REPO_ROOT,
  spawnChild,
  ThreadCpuWindow,
  waitForLine,
  type Child,
} from '../lib/proc.js';
import { ensureWrk, runWrk, runWrkAsync, type WrkResult } from '../lib/wrk.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { median, summarize } from '../lib/stats.js';

const opts = flags('npm run bench:sidecar -- [flags]', {
  ...PROXY_LOAD_FLAGS,
  rounds: {
    default: 6,
    help: 'rounds (each runs every chain once; even ones in reverse order): even, so the nginx pair and the sidecar pair each go first in half',
  },
  'cpu-prof': {
    default: false,
    help: 'run the sidecars under --cpu-prof and report their profiles over their wrk rounds',
  },
  observability: {
    default: false,
    help: 'issue 21: a sidecar pair with metrics, tracing at 1% and access logs on against one with them off (no nginx, no direct chain)',
  },
  parts: {
    default: 'metrics,edges,tracing,access-log',
    help: 'with --observability: what the "on" pair turns on (a comma list of metrics, edges, tracing, access-log; none: an A/A run of two identical pairs); the "off" pair has none',
  },
  together: {
    default: false,
    help: 'with --observability: load both pairs at the same moment in every round (a wrk each, then a fixed-rate loop each), as bench:gateway-ab does, instead of one after the other',
  },
  mtls: {
    default: false,
    help: 'mTLS on both pairs (issue 20): STRICT PeerAuthentication for the sidecars (leaves from the agent CA), and nginx A → nginx B over TLS 1.3 with client certificates (ssl_verify_client on)',
  },
});

/** How the runs warm up, for the report. */
const WARMUP_NOTE = `after ${opts.warmup}s warm-up each (wrk before the wrk rounds, the fixed rate before the fixed-rate rounds)`;

/** The service sidecar B fronts (the upstream is its app); sidecar A calls it by Host. */
const SERVICE = 'bench-app';
const DIRECT = 'direct';
const NGINX = 'nginx pair';
const SIDECARS = 'sidecar pair';
const OBS_OFF = 'sidecars, observability off';
const OBS_ON = 'sidecars, observability on';

/** One way from the load driver to the upstream, and the processes on it (first: the entry). */
interface Chain {
  readonly name: string;
  readonly url: string;
  /** The Host header to send (default the URL's authority). */
  readonly host?: string;
  readonly procs: readonly { readonly label: string; readonly child: Child }[];
}

/** A round of load with the cores of every process of its chain, by label. */
type Measured<R> = R & { readonly cores: Record<string, number> };

/** Wraps `peer` to read the CPU of each of `chain`'s processes over its round. */
function measured<R>(chain: Chain, peer: Peer<R>): Peer<Measured<R>> {
  return {
    name: peer.name,
    async run(round) {
      const windows = chain.procs.map((p) => [p.label, new CpuWindow(p.child.pid)] as const);
      const r = await peer.run(round);
      const cores = Object.fromEntries(windows.map(([label, w]) => [label, w.read().cores]));
      return { ...r, cores };
    },
  };
}

/** The [from, to] monoMicros() windows of the sidecar pair's wrk rounds (for its profiles). */
const sidecarWindows: [number, number][] = [];

/** Starts `meshwork sidecar` from dist/ on free loopback ports; resolves once it listens. */
async function startSidecar(
  name: string,
  args: readonly string[],
  profDir: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ child: Child; inbound: string; outbound: string }> {
  const child = spawnChild(
    name,
    process.execPath,
    [
      ...(profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir]),
      join(REPO_ROOT, 'bin/meshwork.js'),
      'sidecar',
      ...['--inbound', '127.0.0.1:0', '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0'],
      ...['--log-level', 'warn'],
      ...args,
    ],
    { env },
  );
  const m = await waitForLine(child, /inbound (http:\/\/\S+), outbound (http:\/\/\S+)/);
  return { child, inbound: m[1] ?? '', outbound: m[2] ?? '' };
}

/** GETs `url` (fetch would not send another Host) and resolves with the body. */
function getText(url: string, host: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, host === undefined ? {} : { headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** The chain answers the upstream's bytes (polled: the sidecars route once the snapshot lands). */
async function assertProxies(c: Chain): Promise<void> {
  let text = '';
  for (let i = 0; i < 100 && text !== UPSTREAM_BODY; i++) {
    text = await getText(`${c.url}/`, c.host).catch(() => '');
    if (text !== UPSTREAM_BODY) await sleep(100);
  }
  if (text !== UPSTREAM_BODY) throw new Error(`${c.name} does not proxy: "${text}"`);
}

/**
 * Applies a mesh-wide STRICT PeerAuthentication, waits until both sidecars ACKed the snapshot
 * that carries it, and checks sidecar B's inbound now refuses plaintext: the sidecar pair's
 * rounds then run over mTLS, or the bench stops.
 */
async function requireStrictMtls(agentUrl: string, inbound: string): Promise<void> {
  const client = createRegistryClient({ addresses: [agentUrl] });
  try {
    await client.meshApply({
      documents: [
        {
          apiVersion: 'security.istio.io/v1',
          kind: 'PeerAuthentication',
          metadata: { name: 'default', namespace: 'istio-system' },
          spec: { mtls: { mode: 'STRICT' } },
        },
      ],
    });
    let synced = false;
    for (let i = 0; i < 100 && !synced; i++) {
      const { proxies } = await client.meshProxies();
      const nacked = proxies.find((p) => p.state === 'NACKED');
      if (nacked !== undefined)
        throw new Error(`sidecar ${nacked.name} refused STRICT mTLS: ${nacked.error ?? ''}`);
      synced = proxies.length >= 2 && proxies.every((p) => p.state === 'SYNCED');
      if (!synced) await sleep(100);
    }
    if (!synced) throw new Error('the sidecars did not ACK the STRICT PeerAuthentication');
  } finally {
    await client.close();
  }
  const plain = await getText(`${inbound}/`, SERVICE).then(
    (body) => `answered ${JSON.stringify(body)}`,
    () => undefined,
  );
  if (plain !== undefined)
    throw new Error(`sidecar B's inbound ${plain} to plaintext under STRICT`);
}

/**
 * wrk at saturation through `c`, with the CPU of its processes (`windows`: profile spans);
 * `concurrent`: wrk runs without blocking this process, beside another peer's.
 */
function wrkPeer(
  c: Chain,
  windows?: [number, number][],
  concurrent = false,
): Peer<Measured<LoadRound<WrkResult>>> {
  const headers = c.host === undefined ? [] : [`Host: ${c.host}`];
  const url = `${c.url}/`;
  return measured(
    c,
    loadPeer({
      name: c.name,
      pid: c.procs[0]?.child.pid ?? 0,
      load: () =>
        concurrent
          ? runWrkAsync(url, opts.connections, opts.duration, headers)
          : runWrk(url, opts.connections, opts.duration, headers),
      rps: (r) => r.rps,
      failure: (r) => (r.errors > 0 ? `${r.errors} wrk errors` : undefined),
      ...(windows === undefined ? {} : { windows }),
      restMs: 500,
    }),
  );
}

/** Open-loop load at `--rate` through `c` (16 connections) for `seconds`. */
function fixedLoad(c: Chain, seconds: number, failOnErrors: boolean) {
  return fixedRatePeer({
    name: c.name,
    pid: c.procs[0]?.child.pid ?? 0,
    url: c.url,
    path: '/',
    ...(c.host === undefined ? {} : { host: c.host }),
    connections: 16,
    rate: opts.rate,
    seconds,
    failOnErrors,
  });
}

/** A fixed-rate round through `c`, with the CPU of its processes. */
function fixedPeer(c: Chain) {
  return measured(c, fixedLoad(c, opts['fixed-duration'], true));
}

/**
 * `--warmup` seconds at `--rate` through each chain, not measured, before its fixed-rate rounds:
 * the first second or two at a low rate after the saturating rounds and the idle time between
 * them cost every process more (more CPU per request, stalls: a sidecar pair's first fixed round
 * read p99 12-30 ms against 3.8-4.5 in the next, direct and nginx 15-25% more CPU), so an
 * unwarmed first round measured the return from idle rather than the rate.
 */
async function warmFixed(chains: readonly Chain[]): Promise<void> {
  for (const c of chains) {
    log(`fixed-rate warm-up ${c.name} ${opts.warmup}s`);
    await fixedLoad(c, opts.warmup, false).run(0);
  }
}

/**
 * Issue 21's bar: two sidecar pairs to the same upstream, each B registered as its own service
 * (so neither A reaches the other pair's B). "on": Istio metrics, tracing at the default ratio
 * 0.01 to a receiver in this process, access logs at the default sample (0.1, failures always)
 * to a file, edge counts for the call graph; "off": all four off. wrk rounds and fixed-rate
 * rounds, mirrored; the target is the CPU per request (A + B) of "on" over "off".
 */
async function observabilityRun(
  dir: string,
  sidecarArgs: (service: string, data: string) => string[],
  profDir: string | undefined,
  agent: AgentHandle,
  busy: number,
): Promise<void> {
  const otlp = await startOtlpSink();
  const offEnv = { ...process.env, MESHWORK_SIDECAR__EDGE_REPORT_INTERVAL_MS: '0' };
  const off = ['--istio-metrics', 'off', '--access-log', 'off'];
  // none: the "on" pair is the "off" pair's twin (A/A), for the noise of the measurement itself.
  const parts = parseObserverParts(opts.parts, '--parts');
  const on = [
    ...(parts.has('tracing') ? ['--tracing-endpoint', otlp.url] : []),
    ...['--access-log', parts.has('access-log') ? join(dir, 'access.log') : 'off'],
    ...['--istio-metrics', parts.has('metrics') ? 'on' : 'off'],
  ];
  const onEnv = parts.has('edges') ? process.env : offEnv;
  const offB = await startSidecar(
    'off B',
    [...sidecarArgs(SERVICE, 'off-b'), ...off],
    profDir,
    offEnv,
  );
  const offA = await startSidecar(
    'off A',
    [...sidecarArgs('client-off', 'off-a'), ...off],
    profDir,
    offEnv,
  );
  const onB = await startSidecar(
    'on B',
    [...sidecarArgs(`${SERVICE}-obs`, 'on-b'), ...on],
    profDir,
    onEnv,
  );
  const onA = await startSidecar(
    'on A',
    [...sidecarArgs('client-on', 'on-a'), ...on],
    profDir,
    onEnv,
  );
  const pairs = [
    { name: OBS_OFF, a: offA, b: offB, host: SERVICE },
    { name: OBS_ON, a: onA, b: onB, host: `${SERVICE}-obs` },
  ];
  const chains: Chain[] = pairs.map((p) => ({
    name: p.name,
    url: p.a.outbound,
    host: p.host,
    procs: [
      { label: 'A', child: p.a.child },
      { label: 'B', child: p.b.child },
    ],
  }));
  for (const c of chains) await assertProxies(c);
  for (const c of chains) {
    log(`warm-up ${c.name} ${opts.warmup}s`);
    runWrk(`${c.url}/`, opts.connections, opts.warmup, [`Host: ${c.host ?? ''}`]);
  }
  type WrkRound = Measured<LoadRound<WrkResult>>;
  const windows = new Map(chains.map((c) => [c.name, [] as [number, number][]]));
  // Rounds of the two pairs one after the other (mirrored), or at the same moment (--together).
  const rounds = <R>(
    peers: readonly Peer<R>[],
    onResult: (name: string, round: number, r: R) => void,
  ): Promise<Map<string, R[]>> =>
    opts.together
      ? together(peers, opts.rounds, onResult)
      : alternate(peers, opts.rounds, onResult, { order: 'mirrored' });
  const wrk = await rounds(
    chains.map((c) => wrkPeer(c, windows.get(c.name), opts.together)),
    (name, round, r: WrkRound) =>
      log(
        `round ${round} ${name}: ${fmt(r.rps)} req/s, cores A ${fmt(r.cores.A ?? NaN)}, B ${fmt(r.cores.B ?? NaN)}`,
      ),
  );
  await warmFixed(chains);
  const fixed = await rounds(
    chains.map((c) => fixedPeer(c)),
    (name, round, r) =>
      log(
        `fixed round ${round} ${name}: p99 ${fmt(summarize(r.load.latencyMs).p99)} ms, cores A ${fmt(r.cores.A ?? NaN)}, B ${fmt(r.cores.B ?? NaN)}`,
      ),
  );
  const mem = pairs.map((p) => ({
    name: p.name,
    a: readMemory(p.a.child.pid),
    b: readMemory(p.b.child.pid),
  }));
  await Promise.all(pairs.flatMap((p) => [p.a.child.stop(), p.b.child.stop()]));
  const got = await otlp.received();
  await otlp.child.stop();

  const report = new Report(
    'sidecar',
    `npm run bench:sidecar -- ${process.argv.slice(2).join(' ')}`,
  );
  report.quiet(busy);
  report.meta(
    `on (--parts ${[...parts].join(',') || 'none: an A/A run'}): ${on.join(' ')}${parts.has('edges') ? ', edge counts on' : ', MESHWORK_SIDECAR__EDGE_REPORT_INTERVAL_MS=0'}${parts.has('tracing') ? ' (tracing: OTLP/HTTP to a receiver in its own process that counts and drops what it gets, ratio 0.01)' : ''}${parts.has('access-log') ? ' (access log to a file at the default sample 0.1)' : ''}; off: --istio-metrics off, --access-log off, no tracing endpoint, MESHWORK_SIDECAR__EDGE_REPORT_INTERVAL_MS=0. ${opts.mtls ? 'mTLS auto' : 'Plaintext (--mtls off)'} in both pairs; wrk -t1 -c${opts.connections} -d${opts.duration}s, ${opts.rounds} ${opts.together ? 'rounds, both pairs loaded at the same moment (--together)' : 'mirrored rounds'}, ${WARMUP_NOTE}`,
  );
  const usPerReq = (r: WrkRound): number => (((r.cores.A ?? 0) + (r.cores.B ?? 0)) / r.rps) * 1e6;
  const offR = wrk.get(OBS_OFF) ?? [];
  const onR = wrk.get(OBS_ON) ?? [];
  const rows = offR.map((o, i) => {
    const n = onR[i] as WrkRound;
    return { off: o, on: n, cpu: usPerReq(n) / usPerReq(o), rps: n.rps / o.rps };
  });
  const cpuMed = median(rows.map((r) => r.cpu));
  report.section(
    'Saturation (wrk), round by round: CPU of A + B per request',
    table(
      [
        'round',
        'off req/s',
        'on req/s',
        'off µs CPU/req',
        'on µs CPU/req',
        'on / off CPU per request',
        'on / off req/s',
      ],
      [
        ...rows.map((r, i) => [
          String(i + 1),
          fmt(r.off.rps),
          fmt(r.on.rps),
          fmt(usPerReq(r.off)),
          fmt(usPerReq(r.on)),
          `${r.cpu.toFixed(3)}x`,
          `${r.rps.toFixed(3)}x`,
        ]),
        [
          'median',
          '',
          '',
          '',
          '',
          `${cpuMed.toFixed(3)}x`,
          `${median(rows.map((r) => r.rps)).toFixed(3)}x`,
        ],
      ],
    ),
  );
  type FixedRound = NonNullable<ReturnType<typeof fixed.get>>[number];
  const per1k = (r: FixedRound): number =>
    (((r.cores.A ?? 0) + (r.cores.B ?? 0)) / opts.rate) * 1000;
  const fOff = fixed.get(OBS_OFF) ?? [];
  const fOn = fixed.get(OBS_ON) ?? [];
  const fixedRatio = median(fOn.map((r, i) => per1k(r) / per1k(fOff[i] as FixedRound)));
  report.section(
    `At a fixed ${opts.rate} req/s (open loop, 16 connections, medians of ${opts.rounds} rounds)`,
    table(
      ['pair', 'vCPU per 1,000 rps (A + B)', 'p50 ms', 'p99 ms', 'RSS MiB A', 'RSS MiB B'],
      [fOff, fOn].map((rs, i) => [
        i === 0 ? OBS_OFF : OBS_ON,
        fmt(median(rs.map(per1k))),
        fmt(median(rs.map((r) => summarize(r.load.latencyMs).p50))),
        fmt(median(rs.map((r) => summarize(r.load.latencyMs).p99))),
        fmt(mem[i]?.a.rssMiB ?? NaN),
        fmt(mem[i]?.b.rssMiB ?? NaN),
      ]),
    ),
  );
  report.meta(
    `observability on / off, CPU per request: ${cpuMed.toFixed(3)}x at saturation (median of the round-by-round ratios; the target: at most 1.15x), ${fixedRatio.toFixed(3)}x at ${opts.rate} req/s; the OTLP receiver got ${got.exports} exports (${fmt(got.bytes / 1024)} KiB)`,
  );
  if (profDir !== undefined) {
    for (const p of pairs)
      for (const [side, child] of [
        ['A (outbound)', p.a.child],
        ['B (inbound)', p.b.child],
      ] as const) {
        const file = readdirSync(profDir).find(
          (f) => f.includes(`.${child.pid}.`) && f.endsWith('.cpuprofile'),
        );
        if (file === undefined) continue;
        report.section(
          `${p.name}: sidecar ${side} CPU profile over its wrk rounds`,
          profileTables(summarizeProfile(join(profDir, file), 25, windows.get(p.name))),
        );
      }
  }
  report.finish();
}

runMain(async () => {
  if (opts.together && !opts.observability)
    throw new Error('--together compares the two pairs of --observability: add --observability');
  ensureWrk('nginx');
  const busy = await settle(opts['quiet-wait']);
  const dir = await makeTempDir('bench-sidecar');
  const nginxBin = '/usr/sbin/nginx';
  const versions = {
    nginx: spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.toString().trim(),
    // wrk -v prints its version, then exits 1.
    wrk: (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '').trim(),
  };

  const { upstream, upstreamUrl, upPort, agent } = await startUpstream();
  const profDir = profiling(opts['cpu-prof']).cpuProfDir;

  // Sidecar B fronts the upstream as its app and registers it as SERVICE at B's inbound;
  // sidecar A fronts the same app (only its TCP health check touches it) as another service,
  // and reaches SERVICE through the agent's snapshot. Neither runs its app (no `-- CMD`).
  const sidecarArgs = (service: string, data: string): string[] => [
    ...['--service', service, '--app-port', String(upPort)],
    ...['--registry', agent.url, '--data-dir', join(dir, data)],
    // mTLS is on by default (auto mTLS between sidecars with identities): without --mtls the
    // pair runs plaintext, like the nginx pair it is compared with.
    ...(opts.mtls ? [] : ['--mtls', 'off']),
  ];
  if (opts.observability) {
    await observabilityRun(dir, sidecarArgs, profDir, agent, busy);
    await upstream.stop();
    await agent.stop();
    return;
  }
  const b = await startSidecar('sidecar B', sidecarArgs(SERVICE, 'sidecar-b'), profDir);
  const a = await startSidecar('sidecar A', sidecarArgs('bench-client', 'sidecar-a'), profDir);

  const [ngA, ngB] = [await freePort(), await freePort()];
  let tlsB: NginxTls = {};
  let tlsA: NginxTls = {};
  if (opts.mtls) {
    const certs = makeBenchCerts(dir);
    tlsB = { server: { ...certs.leaf(SERVICE), ca: certs.ca } };
    tlsA = { upstream: { ...certs.leaf('bench-client'), ca: certs.ca, name: SERVICE } };
    await requireStrictMtls(agent.url, b.inbound);
  }
  const nginxB = spawnChild(
    'nginx B',
    nginxBin,
    writeNginxConfig(dir, 'nginx-b', ngB, upPort, tlsB),
  );
  const nginxA = spawnChild('nginx A', nginxBin, writeNginxConfig(dir, 'nginx-a', ngA, ngB, tlsA));

  // The two pairs last and side by side: the rounds are mirrored (A B C, C B A), so the two run
  // back to back in every round, each first in half of them.
  const chains: Chain[] = [
    { name: DIRECT, url: upstreamUrl, procs: [{ label: 'upstream', child: upstream }] },
    {
      name: NGINX,
      url: `http://127.0.0.1:${ngA}`,
      procs: [
        { label: 'A', child: nginxA },
        { label: 'B', child: nginxB },
      ],
    },
    {
      name: SIDECARS,
      url: a.outbound,
      host: SERVICE,
      procs: [
        { label: 'A', child: a.child },
        { label: 'B', child: b.child },
      ],
    },
  ];
  for (const c of chains) await assertProxies(c);
  const headers = (c: Chain): string[] => (c.host === undefined ? [] : [`Host: ${c.host}`]);
  for (const c of chains) {
    log(`warm-up ${c.name} ${opts.warmup}s`);
    runWrk(`${c.url}/`, opts.connections, opts.warmup, headers(c));
  }

  type WrkRound = Measured<LoadRound<WrkResult>>;
  const results = await alternate(
    chains.map((c) => wrkPeer(c, c.name === SIDECARS ? sidecarWindows : undefined)),
    opts.rounds,
    (name, round, r: WrkRound) =>
      log(
        `round ${round} ${name}: ${fmt(r.rps)} req/s, p99 ${fmt(r.result.p99Ms)} ms, cores ${Object.entries(
          r.cores,
        )
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join(', ')}`,
      ),
    { order: 'mirrored' },
  );
  const wrkMed = (name: string, f: (r: WrkRound) => number): number =>
    median((results.get(name) ?? []).map(f));
  const rpsOf = (name: string): number => wrkMed(name, (r) => r.rps);

  /** Sidecar A's CPU by thread over its last fixed-rate round. */
  let sidecarThreads: ReturnType<ThreadCpuWindow['read']> = [];
  // Latency at a fixed rate (open loop, latency from each request's due time), with the CPU of
  // each process of the chain and the sidecars' memory at that rate.
  await warmFixed(chains);
  const fixed = await alternate(
    chains.map((c) => {
      const peer = fixedPeer(c);
      return {
        name: c.name,
        run: async (round: number) => {
          const threads = c.name === SIDECARS ? new ThreadCpuWindow(a.child.pid) : undefined;
          const r = await peer.run(round);
          if (threads !== undefined) sidecarThreads = threads.read();
          const mem = Object.fromEntries(
            c.procs.map((p) => [p.label, readMemory(p.child.pid)] as const),
          );
          return { ...r, mem };
        },
      };
    }),
    opts.rounds,
    (name, round, r) => {
      const s = summarize(r.load.latencyMs);
      log(
        `fixed round ${round} ${name}: p50 ${fmt(s.p50)} ms, p99 ${fmt(s.p99)} ms, ${r.load.lateSends} late sends, cores ${Object.entries(
          r.cores,
        )
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join(', ')}`,
      );
    },
    { order: 'mirrored' },
  );
  type FixedRound = NonNullable<ReturnType<typeof fixed.get>>[number];
  const fixedMed = (name: string, f: (r: FixedRound) => number): number =>
    median((fixed.get(name) ?? []).map(f));
  const p99Of = (name: string): number => fixedMed(name, (r) => summarize(r.load.latencyMs).p99);
  const p50Of = (name: string): number => fixedMed(name, (r) => summarize(r.load.latencyMs).p50);

  const endMem = { A: readMemory(a.child.pid), B: readMemory(b.child.pid) };
  await Promise.all([a.child.stop(), b.child.stop(), nginxA.stop(), nginxB.stop()]);
  await upstream.stop();
  await agent.stop();

  const report = new Report(
    'sidecar',
    [
      'npm run bench:sidecar',
      ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : []),
    ].join(' '),
  );
  report.quiet(busy);
  report.meta(`peers: ${versions.nginx} (two processes); ${versions.wrk}`);
  if (opts.mtls)
    report.meta(
      'mTLS on both pairs: the sidecars under a mesh-wide STRICT PeerAuthentication (leaves from the agent CA, TLS 1.3); nginx A → nginx B over TLS 1.3 with a client certificate (ssl_verify_client on, proxy_ssl_session_reuse on); the driver → A and B → upstream stay plaintext on loopback in both',
    );
  report.meta(
    `load: wrk -t1 -c${opts.connections} -d${opts.duration}s per round, ${opts.rounds} rounds alternating ${chains.map((c) => c.name).join(' → ')} (every other round in reverse), ${WARMUP_NOTE}; upstream node:http (13 B body) in its own process; every proxy one process, one worker; wrk, the four proxies and the upstream share the machine's 2 cores`,
  );
  const nginxRps = rpsOf(NGINX);
  const coresOf = (r: { cores: Record<string, number> }): number =>
    Object.values(r.cores).reduce((s, v) => s + v, 0);
  report.section(
    'Throughput (wrk, medians)',
    table(
      [
        'chain',
        'req/s',
        'rounds',
        'vs nginx pair',
        'p99 ms',
        'cores A',
        'cores B',
        'µs CPU/req (A+B)',
      ],
      chains.map((c) => [
        c.name,
        fmt(rpsOf(c.name)),
        (results.get(c.name) ?? []).map((r) => fmt(r.rps)).join(' / '),
        ratio(rpsOf(c.name), nginxRps),
        fmt(wrkMed(c.name, (r) => r.result.p99Ms)),
        fmt(wrkMed(c.name, (r) => r.cores.A ?? r.cores.upstream ?? NaN)),
        c.name === DIRECT ? '-' : fmt(wrkMed(c.name, (r) => r.cores.B ?? NaN)),
        c.name === DIRECT ? '-' : fmt(wrkMed(c.name, (r) => (coresOf(r) / r.rps) * 1e6)),
      ]),
    ),
  );
  const sc = results.get(SIDECARS) ?? [];
  const ng = results.get(NGINX) ?? [];
  const paired = sc.map((r, i) => ({ a: r.rps, b: ng[i]?.rps ?? NaN }));
  const pairedMedian = median(paired.map((p) => p.a / p.b));
  report.section(
    'The sidecar pair against the nginx pair, round by round (back to back in each round)',
    table(
      ['round', 'sidecar pair req/s', 'nginx pair req/s', 'sidecars / nginx', 'ran first'],
      [
        ...paired.map((p, i) => [
          String(i + 1),
          fmt(p.a),
          fmt(p.b),
          ratio(p.a, p.b),
          i % 2 === 0 ? NGINX : SIDECARS,
        ]),
        ['median', '', '', `${pairedMedian.toFixed(3)}x`, ''],
      ],
    ),
  );
  report.meta(
    `sidecar pair vs nginx pair: ${pairedMedian.toFixed(3)}x, the median of the round-by-round ratios (the figure the target is read from); ${(rpsOf(SIDECARS) / nginxRps).toFixed(3)}x as the ratio of the two medians`,
  );
  const per1k = (cores: number): number => (cores / opts.rate) * 1000;
  report.section(
    `Latency at a fixed ${opts.rate} req/s (open loop, 16 connections, medians of ${opts.rounds} rounds)`,
    table(
      [
        'chain',
        'p50 ms',
        'p99 ms',
        'added p99 ms vs direct',
        'vCPU per 1,000 rps: A',
        'B',
        'RSS MiB: A',
        'B',
      ],
      chains.map((c) => {
        const two = c.name !== DIRECT;
        const rss = (label: string): string =>
          fmt(fixedMed(c.name, (r) => r.mem[label]?.rssMiB ?? NaN));
        return [
          c.name,
          fmt(p50Of(c.name)),
          fmt(p99Of(c.name)),
          two ? fmt(p99Of(c.name) - p99Of(DIRECT)) : '-',
          fmt(per1k(fixedMed(c.name, (r) => r.cores.A ?? r.cores.upstream ?? NaN))),
          two ? fmt(per1k(fixedMed(c.name, (r) => r.cores.B ?? NaN))) : '-',
          two ? rss('A') : rss('upstream'),
          two ? rss('B') : '-',
        ];
      }),
    ),
  );
  report.meta(
    `sidecar memory at the end: A RSS ${fmt(endMem.A.rssMiB)} MiB (peak VmHWM ${fmt(endMem.A.hwmMiB)} MiB), B RSS ${fmt(endMem.B.rssMiB)} MiB (peak ${fmt(endMem.B.hwmMiB)} MiB); the peaks include wrk's saturating rounds`,
  );
  report.section(
    `Sidecar A's CPU by thread at ${opts.rate} req/s (its last fixed-rate round, cores)`,
    table(
      ['thread', 'user', 'system', 'vCPU per 1,000 rps'],
      sidecarThreads.map((t) => [
        t.thread,
        fmt(t.user),
        fmt(t.system),
        fmt(per1k(t.user + t.system)),
      ]),
    ),
  );
  if (profDir !== undefined) {
    for (const [label, child] of [
      ['A (outbound)', a.child],
      ['B (inbound)', b.child],
    ] as const) {
      const file = readdirSync(profDir).find(
        (f) => f.includes(`.${child.pid}.`) && f.endsWith('.cpuprofile'),
      );
      if (file === undefined) continue;
      report.section(
        `Sidecar ${label} CPU profile over the sidecar pair's wrk rounds (V8 samples are wall-clock; native socket work in libuv's poll phase is sampled as idle)`,
        profileTables(summarizeProfile(join(profDir, file), 25, sidecarWindows)),
      );
    }
  }
  report.finish();
});
