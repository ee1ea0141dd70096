/**
 * @module wrk (Debian) as a closed-loop load driver: the C tool our benchmarking doc names for
 * maximum throughput. It frames responses without parsing bodies in JavaScript, so its cost on a
 * shared 2-core machine does not grow with the answer's size the way autocannon's does.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { REPO_ROOT } from './proc.js';

export interface WrkResult {
  readonly rps: number;
  readonly p99Ms: number;
  /** Socket errors plus non-2xx/3xx answers. */
  readonly errors: number;
}

/** Installs wrk (scripts/ensure-tools.sh) if it is missing. */
export function ensureWrk(...more: string[]): void {
  execFileSync('bash', [join(REPO_ROOT, 'scripts/ensure-tools.sh'), 'wrk', ...more], {
    stdio: 'inherit',
  });
}

/**
 * Runs `wrk -t1 -c<connections> -d<seconds>s --latency url` and reads its summary; `headers`
 * (`Name: value`) go out with every request (`-H`), e.g. a Host naming a service; `script` is a
 * wrk Lua script (`-s`), e.g. one setting `wrk.method = "PUT"`.
 */
export function runWrk(
  url: string,
  connections: number,
  seconds: number,
  headers: readonly string[] = [],
  script?: string,
): WrkResult {
  return parseWrk(
    execFileSync('wrk', wrkArgs(url, connections, seconds, headers, script), {
      encoding: 'utf8',
    }),
  );
}

/** runWrk without blocking: for loads that run at the same time. */
export async function runWrkAsync(
  url: string,
  connections: number,
  seconds: number,
  headers: readonly string[] = [],
): Promise<WrkResult> {
  const { stdout } = await promisify(execFile)('wrk', wrkArgs(url, connections, seconds, headers), {
    encoding: 'utf8',
  });
  return parseWrk(stdout);
}

function wrkArgs(
  url: string,
  connections: number,
  seconds: number,
  headers: readonly string[] = [],
  script?: string,
): string[] {
  const h = headers.flatMap((x) => ['-H', x]);
  const s = script === undefined ? [] : ['-s', script];
  return ['-t1', `-c${connections}`, `-d${seconds}s`, ...h, ...s, '--latency', url];
}

function parseWrk(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p99 = /99%\s+([\d.]+)(us|ms|s)/.exec(out);
  const unit = p99?.[2] === 'us' ? 0.001 : p99?.[2] === 's' ? 1000 : 1;
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = non2xx + (errs === null ? 0 : errs.slice(1).reduce((a, b) => a + Number(b), 0));
  return { rps, p99Ms: Number(p99?.[1] ?? NaN) * unit, errors };
}
