/**
 * @module bench:gateway-ab: this build of the gateway against another (a git ref), paired and
 * at the same time. Both gateways route to the same upstream; each round loads both with their
 * own wrk at the same moment and reads each one's CPU per request, so the machine's swings (on
 * this VM they move a node process's speed by more than most changes are worth, from one minute
 * to the next) hit both alike. The order the two loads start in alternates. The figure that
 * counts is the per-round ratio of CPU per request; the absolute numbers are inflated by the two
 * gateways sharing the cores. For comparing builds only: the gateway's targets against its
 * peers are `bench:gateway`'s.
 */
import { execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, onCleanup, runMain } from '../lib/cleanup.js';
import { startUpstream, UPSTREAM_BODY, writeGatewayConfig } from '../lib/gateway-setup.js';
import { flags } from '../lib/load.js';
import { CpuWindow, REPO_ROOT, spawnChild, waitForLine, type Child } from '../lib/proc.js';
import { fmt, log, Report, settle, table } from '../lib/report.js';
import { median } from '../lib/stats.js';
import { ensureWrk, runWrkAsync } from '../lib/wrk.js';

const opts = flags('npm run bench:gateway-ab -- --base <git ref> [flags]', {
  base: { default: 'HEAD~1', help: 'git ref of the build to compare with (built in a worktree)' },
  rounds: { default: 8, help: 'rounds, both gateways loaded at once in each' },
  duration: { default: 4, help: 'seconds per round' },
  warmup: { default: 3, help: 'seconds of untimed load (both at once) before the rounds' },
  connections: { default: 64, help: 'wrk connections per gateway' },
  'quiet-wait': { default: 120, help: 'seconds to wait for other work on the machine to settle' },
  chunked: {
    default: false,
    help: 'the upstream answers with transfer-encoding: chunked instead of a Content-Length',
  },
});

interface Side {
  readonly name: string;
  readonly url: string;
  readonly child: Child;
}

interface Sample {
  readonly usPerReq: number;
  readonly rps: number;
  readonly errors: number;
}

/** A worktree of `ref` under `dir`, built (its node_modules are this checkout's). */
function buildRef(dir: string, ref: string): { root: string; commit: string } {
  const commit = execFileSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', ref], {
    encoding: 'utf8',
  }).trim();
  const root = join(dir, 'base');
  execFileSync('git', ['-C', REPO_ROOT, 'worktree', 'add', '--detach', root, commit], {
    stdio: 'ignore',
  });
  onCleanup(() => {
    execFileSync('git', ['-C', REPO_ROOT, 'worktree', 'remove', '--force', root], {
      stdio: 'ignore',
    });
  });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'));
  log(`building ${ref} (${commit})`);
  execFileSync(
    process.execPath,
    [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
  return { root, commit };
}

/** Loads both sides at once for `seconds`; each side's CPU per request over its load. */
async function pairedRound(sides: readonly Side[], seconds: number): Promise<Sample[]> {
  const cpus = sides.map((s) => new CpuWindow(s.child.pid));
  const results = await Promise.all(
    sides.map((s) => runWrkAsync(`${s.url}/`, opts.connections, seconds)),
  );
  return sides.map((_s, i) => {
    const cpu = (cpus[i] as CpuWindow).read();
    const r = results[i] as Awaited<ReturnType<typeof runWrkAsync>>;
    return {
      usPerReq: (cpu.cpuSeconds * 1e6) / (r.rps * cpu.wallSeconds),
      rps: r.rps,
      errors: r.errors,
    };
  });
}

runMain(async () => {
  ensureWrk();
  const dir = await makeTempDir('gateway-ab');
  const base = buildRef(dir, opts.base);
  const head = execFileSync('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD'], {
    encoding: 'utf8',
  }).trim();
  const dirty =
    execFileSync('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--', 'src'], {
      encoding: 'utf8',
    }).trim() !== '';
  const busy = await settle(opts['quiet-wait']);

  const { agent } = await startUpstream({ chunked: opts.chunked });
  const start = async (name: string, root: string): Promise<Side> => {
    const { file, port } = await writeGatewayConfig(dir, name, agent.url);
    const child = spawnChild(name, process.execPath, [
      join(root, 'bin/meshwork.js'),
      'gateway',
      '--config',
      file,
    ]);
    await waitForLine(child, /listening on/);
    const url = `http://127.0.0.1:${port}`;
    const text = await fetch(`${url}/`).then((r) => r.text());
    if (text !== UPSTREAM_BODY) throw new Error(`${name} does not proxy: "${text}"`);
    return { name, url, child };
  };
  const thisName = `this build (${head}${dirty ? ' + changes' : ''})`;
  const baseName = `${opts.base} (${base.commit})`;
  const ours = await start('this', REPO_ROOT);
  const theirs = await start('base', base.root);

  log(`warm-up ${opts.warmup}s`);
  await pairedRound([ours, theirs], opts.warmup);
  const rows: (readonly unknown[])[] = [];
  const ratios: number[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    // Which wrk starts first alternates.
    const order = round % 2 === 1 ? [ours, theirs] : [theirs, ours];
    const samples = await pairedRound(order, opts.duration);
    const [a, b] = round % 2 === 1 ? samples : [samples[1], samples[0]];
    if (a === undefined || b === undefined) throw new Error('a side gave no result');
    if (a.errors + b.errors > 0) throw new Error(`round ${round}: ${a.errors + b.errors} errors`);
    const r = b.usPerReq / a.usPerReq;
    ratios.push(r);
    log(
      `round ${round}: this ${fmt(a.usPerReq)} µs/req, base ${fmt(b.usPerReq)} µs/req, base/this ${r.toFixed(3)}`,
    );
    rows.push([round, fmt(a.usPerReq), fmt(b.usPerReq), r.toFixed(3), fmt(a.rps), fmt(b.rps)]);
  }
  await Promise.all([ours.child.stop(), theirs.child.stop()]);
  await agent.stop();

  const report = new Report(
    'gateway-ab',
    `npm run bench:gateway-ab -- --base ${opts.base}${opts.chunked ? ' --chunked' : ''}`,
  );
  report.quiet(busy);
  report.meta(`this: ${thisName}; base: ${baseName}`);
  report.meta(
    `load: per round, wrk -t1 -c${opts.connections} -d${opts.duration}s on each gateway at the same time (start order alternating), after ${opts.warmup}s of both; one upstream (node:http, 13 B${opts.chunked ? ', chunked' : ''}), both gateways on the same config`,
  );
  report.section(
    'CPU per request, paired (base/this above 1: this build is cheaper)',
    table(['round', 'this µs/req', 'base µs/req', 'base/this', 'this req/s', 'base req/s'], rows),
  );
  report.text(
    `- base/this: median **${median(ratios).toFixed(3)}**, range ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)} over ${ratios.length} rounds`,
  );
  report.finish();
});
