/**
 * @module bench:gateway: one node:http upstream behind each proxy: direct (the floor), nginx
 * proxy_pass with upstream keepalive, HAProxy, node `http-proxy`, a minimal node:http + undici
 * proxy sending the gateway's forwarding headers (the floor of its first design), and the
 * Meshwork gateway (routing through a real agent's discovery cache). wrk for maximum
 * throughput, A B C D E F in odd rounds and F E D C B A in even ones, nginx and the gateway
 * last, so back to back in every round (the target is the median of their round-by-round
 * ratios); then latency at a fixed rate (open loop) for direct, nginx and the gateway, with the
 * gateway's CPU per 1,000 rps and its RSS. Every peer: one process, one worker/thread.
 * `--cpu-prof` adds the gateway's CPU profile over its wrk rounds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { profileTables, summarizeProfile } from '../lib/cpuprofile.js';
import { profiling } from '../lib/agent.js';
import {
  PROXY_LOAD_FLAGS,
  startUpstream,
  UPSTREAM_BODY,
  writeGatewayConfig,
  writeNginxConfig,
} from '../lib/gateway-setup.js';
import { makeTempDir, runMain } from '../lib/cleanup.js';
import { alternate, flags, sleep, type Peer } from '../lib/load.js';
import { fixedRatePeer, loadPeer, type LoadRound } from '../lib/load-peer.js';
import {
  freePort,
  readMemory,
  REPO_ROOT,
  spawnChild,
  waitForLine,
  type Child,
} from '../lib/proc.js';
import { ensureWrk, runWrk, type WrkResult } from '../lib/wrk.js';
import { fmt, log, ratio, Report, settle, table } from '../lib/report.js';
import { median, summarize } from '../lib/stats.js';

const opts = flags('npm run bench:gateway -- [flags]', {
  ...PROXY_LOAD_FLAGS,
  rounds: {
    default: 6,
    help: 'rounds (each runs every peer once; even ones in reverse order): even, so nginx and the gateway each go first in half',
  },
  'cpu-prof': {
    default: false,
    help: 'run the gateway under --cpu-prof and report its profile over its wrk rounds',
  },
});

const HTTP_PROXY = `
const http = require('node:http');
const httpProxy = require('http-proxy');
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ target: process.argv[2], agent });
proxy.on('error', (err, req, res) => { res.writeHead(502); res.end(); });
http.createServer((req, res) => proxy.web(req, res)).listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'));`;

/**
 * The floor of the gateway's first design (`downstreamServer: node`, `upstreamClient: undici`):
 * node:http in, undici's Pool out (raw handler, response head as a flat list), no routing,
 * retries, timers or metrics, but the same request headers the gateway sends (forwarding and
 * attempt/deadline headers), so the upstream parses the same. The gateway's own server and
 * client (Http1Server, Http1Agent) are what take it above this floor.
 */
const UNDICI_FLOOR = `
const http = require('node:http');
const { Pool } = require('undici');
const pool = new Pool(process.argv[2], { keepAliveTimeout: 4000 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);
class Handler {
  constructor(res) { this.res = res; }
  onConnect() {}
  onHeaders(status, raw, resume, text) {
    const out = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1');
      if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'));
    }
    this.res.writeHead(status, text, out);
    return true;
  }
  onData(chunk) { return this.res.write(chunk); }
  onComplete() { this.res.end(); }
  onError(err) { this.res.destroy(err); }
}
http.createServer({ keepAliveTimeout: 300000 }, (req, res) => {
  const host = req.headers.host ?? '';
  const addr = req.socket.remoteAddress ?? '';
  const headers = ['host', host, 'x-forwarded-for', addr, 'x-forwarded-proto', 'http',
    'x-forwarded-host', host, 'forwarded', 'for=' + addr + ';host="' + host + '";proto=http',
    'x-meshwork-attempt', '1', 'x-meshwork-deadline-ms', '15000'];
  pool.dispatch({ path: req.url, method: req.method, headers, body: null }, new Handler(res));
}).listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'));`;

interface Target {
  readonly name: string;
  readonly url: string;
  readonly child: Child;
}

type WrkRound = LoadRound<WrkResult>;

/** Runs wrk against `url` with the run's connection count. */
const wrk = (url: string, seconds: number): WrkResult => runWrk(url, opts.connections, seconds);

/** The [from, to] monoMicros() windows of the gateway's wrk rounds (for its CPU profile). */
const gatewayWindows: [number, number][] = [];

function wrkPeer(t: Target): Peer<WrkRound> {
  return loadPeer({
    name: t.name,
    pid: t.child.pid,
    load: () => wrk(`${t.url}/`, opts.duration),
    rps: (r) => r.rps,
    ...(t.name === GATEWAY ? { windows: gatewayWindows } : {}),
    restMs: 500,
  });
}

const GATEWAY = 'meshwork gateway';

async function sh(bin: string): Promise<string> {
  for (const dir of ['', '/usr/sbin/', '/usr/bin/']) {
    try {
      execFileSync(`${dir}${bin}`, ['-v'], { stdio: 'ignore' });
      return `${dir}${bin}`;
    } catch {
      // next
    }
  }
  throw new Error(`${bin} not found: run scripts/ensure-tools.sh ${bin}`);
}

/**
 * Each round's `a` against the `b` of the same round, and the median of those ratios. With
 * mirrored rounds the two ran back to back each time, so a round's ratio sees one state of the
 * machine; the ratio of two medians can pair a fast minute of one with a slow one of the other.
 */
function pairedRatios(
  a: readonly WrkRound[],
  b: readonly WrkRound[],
): { rounds: { a: number; b: number }[]; median: number } {
  const rounds = a.map((r, i) => ({ a: r.rps, b: b[i]?.rps ?? NaN }));
  return { rounds, median: median(rounds.map((r) => r.a / r.b)) };
}

runMain(async () => {
  ensureWrk('nginx', 'haproxy');
  const busy = await settle(opts['quiet-wait']);
  const dir = await makeTempDir('bench-gateway');
  const nginxBin = await sh('nginx');
  const haproxyBin = await sh('haproxy');
  const versions = {
    nginx: spawnSync(nginxBin, ['-v'], { encoding: 'utf8' }).stderr.toString().trim(),
    haproxy: (execFileSync(haproxyBin, ['-v'], { encoding: 'utf8' }).split('\n')[0] ?? '').trim(),
    // wrk -v prints its version, then exits 1.
    wrk: (spawnSync('wrk', ['-v'], { encoding: 'utf8' }).stdout.split('\n')[0] ?? '').trim(),
  };

  const { upstream, upstreamUrl, upPort, agent } = await startUpstream();
  const { file: gwConfig, port: gwPort } = await writeGatewayConfig(dir, 'gateway', agent.url);
  // Kept in bench/.results/profiles/, as the agent's are.
  const profDir = profiling(opts['cpu-prof']).cpuProfDir;
  const gateway = spawnChild('gateway', process.execPath, [
    ...(profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir]),
    join(REPO_ROOT, 'bin/meshwork.js'),
    'gateway',
    '--config',
    gwConfig,
  ]);
  await waitForLine(gateway, /listening on/);

  const ngPort = await freePort();
  const nginx = spawnChild('nginx', nginxBin, writeNginxConfig(dir, 'nginx', ngPort, upPort));

  const hpPort = await freePort();
  writeFileSync(
    join(dir, 'haproxy.cfg'),
    `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  option forwardfor
frontend f
  bind 127.0.0.1:${hpPort}
  default_backend b
backend b
  http-reuse always
  server s1 127.0.0.1:${upPort}
`,
  );
  const haproxy = spawnChild('haproxy', haproxyBin, ['-db', '-f', join(dir, 'haproxy.cfg')]);

  /** A proxy script run by node (`-e script port upstream`), once it listens. */
  const nodePeer = async (
    name: string,
    script: string,
  ): Promise<{ port: number; child: Child }> => {
    const port = await freePort();
    const child = spawnChild(name, process.execPath, ['-e', script, String(port), upstreamUrl]);
    await waitForLine(child, /listening/);
    return { port, child };
  };
  const { port: npPort, child: nodeProxy } = await nodePeer('http-proxy', HTTP_PROXY);
  const { port: flPort, child: floor } = await nodePeer('undici-floor', UNDICI_FLOOR);

  // nginx and the gateway last and side by side: the rounds are mirrored (A B C, C B A), so the
  // two run back to back in every round, each first in half of them (see pairedRatios).
  const targets: Target[] = [
    { name: 'direct', url: upstreamUrl, child: upstream },
    { name: 'haproxy', url: `http://127.0.0.1:${hpPort}`, child: haproxy },
    { name: 'http-proxy', url: `http://127.0.0.1:${npPort}`, child: nodeProxy },
    { name: 'node:http+undici floor', url: `http://127.0.0.1:${flPort}`, child: floor },
    { name: 'nginx', url: `http://127.0.0.1:${ngPort}`, child: nginx },
    { name: GATEWAY, url: `http://127.0.0.1:${gwPort}`, child: gateway },
  ];
  // Every peer must answer the upstream's bytes before anything is timed.
  for (const t of targets) {
    let text = '';
    for (let i = 0; i < 50 && text !== UPSTREAM_BODY; i++) {
      text = await fetch(`${t.url}/`)
        .then((r) => r.text())
        .catch(() => '');
      if (text !== UPSTREAM_BODY) await sleep(100);
    }
    if (text !== UPSTREAM_BODY) throw new Error(`${t.name} does not proxy: "${text}"`);
  }
  for (const t of targets) {
    log(`warm-up ${t.name} ${opts.warmup}s`);
    wrk(`${t.url}/`, opts.warmup);
  }

  const results = await alternate(
    targets.map(wrkPeer),
    opts.rounds,
    (name, round, r) =>
      log(
        `round ${round} ${name}: ${fmt(r.rps)} req/s, p99 ${fmt(r.result.p99Ms)} ms, ${fmt(r.serverCores)} cores, ${r.result.errors} errors`,
      ),
    { order: 'mirrored' },
  );
  const med = (name: string, f: (r: WrkRound) => number): number =>
    median((results.get(name) ?? []).map(f));
  const rpsOf = (name: string): number => med(name, (r) => r.rps);

  // Latency at a fixed rate (open loop; autocannon's overallRate sends each second's quota in a
  // burst, which measures queueing behind the burst rather than latency at that rate).
  const fixedTargets = targets.filter((t) => ['direct', 'nginx', GATEWAY].includes(t.name));
  const fixed = await alternate(
    fixedTargets.map((t) => {
      const peer = fixedRatePeer({
        name: t.name,
        pid: t.child.pid,
        url: t.url,
        path: '/',
        connections: 16,
        rate: opts.rate,
        seconds: opts['fixed-duration'],
      });
      return {
        name: t.name,
        run: async (round: number) => {
          const r = await peer.run(round);
          return { load: r.load, cores: r.serverCores, rss: readMemory(t.child.pid) };
        },
      };
    }),
    opts.rounds,
    (name, round, r) => {
      const s = summarize(r.load.latencyMs);
      log(
        `fixed round ${round} ${name}: p50 ${fmt(s.p50)} ms, p99 ${fmt(s.p99)} ms, ${r.load.errors} errors, ${fmt(r.cores)} cores`,
      );
    },
    { order: 'mirrored' },
  );
  const fixedMed = (
    name: string,
    f: (r: NonNullable<ReturnType<typeof fixed.get>>[number]) => number,
  ) => median((fixed.get(name) ?? []).map(f));
  const p99Of = (name: string): number => fixedMed(name, (r) => summarize(r.load.latencyMs).p99);
  const p50Of = (name: string): number => fixedMed(name, (r) => summarize(r.load.latencyMs).p50);

  const gwMem = readMemory(gateway.pid);
  await Promise.all([gateway.stop(), nginx.stop(), haproxy.stop(), nodeProxy.stop(), floor.stop()]);
  await upstream.stop();
  await agent.stop();

  const report = new Report('gateway', 'npm run bench:gateway');
  report.quiet(busy);
  report.meta(`peers: ${versions.nginx}; ${versions.haproxy}; http-proxy 1.18.1; ${versions.wrk}`);
  report.meta(
    `load: wrk -t1 -c${opts.connections} -d${opts.duration}s per round, ${opts.rounds} rounds alternating ${targets.map((t) => t.name).join(' → ')} (every other round in reverse), after ${opts.warmup}s warm-up each; upstream node:http (13 B body) in its own process; every proxy one process, one worker/thread, keep-alive to the upstream; wrk, proxy and upstream share the machine's cores`,
  );
  const nginxRps = rpsOf('nginx');
  const nodeProxyRps = rpsOf('http-proxy');
  report.section(
    'Throughput (wrk, medians)',
    table(
      [
        'peer',
        'req/s',
        'rounds',
        'vs nginx',
        'vs http-proxy',
        'p99 ms',
        'proxy cores',
        'µs CPU/req',
      ],
      targets.map((t) => [
        t.name,
        fmt(rpsOf(t.name)),
        (results.get(t.name) ?? []).map((r) => fmt(r.rps)).join(' / '),
        ratio(rpsOf(t.name), nginxRps),
        ratio(rpsOf(t.name), nodeProxyRps),
        fmt(med(t.name, (r) => r.result.p99Ms)),
        fmt(med(t.name, (r) => r.serverCores)),
        fmt(med(t.name, (r) => (r.serverCores / r.rps) * 1e6)),
      ]),
    ),
  );
  const paired = pairedRatios(results.get(GATEWAY) ?? [], results.get('nginx') ?? []);
  report.section(
    'The gateway against nginx, round by round (the two run back to back in each round)',
    table(
      ['round', 'gateway req/s', 'nginx req/s', 'gateway / nginx', 'ran first'],
      [
        ...paired.rounds.map((p, i) => [
          String(i + 1),
          fmt(p.a),
          fmt(p.b),
          ratio(p.a, p.b),
          i % 2 === 0 ? 'nginx' : GATEWAY,
        ]),
        ['median', '', '', `${paired.median.toFixed(3)}x`, ''],
      ],
    ),
  );
  report.meta(
    `gateway vs nginx: ${paired.median.toFixed(3)}x, the median of the round-by-round ratios (the figure the target is read from); ${(rpsOf(GATEWAY) / nginxRps).toFixed(3)}x as the ratio of the two medians`,
  );
  report.section(
    `Latency at a fixed ${opts.rate} req/s (open loop, 16 connections, medians of ${opts.rounds} rounds)`,
    table(
      [
        'peer',
        'p50 ms',
        'p99 ms',
        'added p99 ms vs direct',
        'cores',
        'cores per 1,000 rps',
        'RSS MiB',
      ],
      fixedTargets.map((t) => [
        t.name,
        fmt(p50Of(t.name)),
        fmt(p99Of(t.name)),
        t.name === 'direct' ? '-' : fmt(p99Of(t.name) - p99Of('direct')),
        fmt(fixedMed(t.name, (r) => r.cores)),
        fmt(fixedMed(t.name, (r) => (r.cores / opts.rate) * 1000)),
        fmt(fixedMed(t.name, (r) => r.rss.rssMiB)),
      ]),
    ),
  );
  report.meta(
    `gateway memory at the end: RSS ${fmt(gwMem.rssMiB)} MiB, peak (VmHWM) ${fmt(gwMem.hwmMiB)} MiB`,
  );
  if (profDir !== undefined) {
    const file = readdirSync(profDir).find(
      (f) => f.includes(`.${gateway.pid}.`) && f.endsWith('.cpuprofile'),
    );
    if (file !== undefined) {
      report.section(
        'Gateway CPU profile over its wrk rounds (V8 samples are wall-clock: a write that wakes a peer and is preempted counts in full; `perf` on this VM puts the kernel at ~30% of the CPU)',
        profileTables(summarizeProfile(join(profDir, file), 25, gatewayWindows)),
      );
    }
  }
  report.finish();
});
