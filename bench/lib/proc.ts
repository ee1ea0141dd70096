/**
 * @module Processes for benchmarks: free ports, spawned children that are always stopped, and
 * /proc sampling of a pid's memory (VmRSS, VmHWM) and CPU (utime + stime).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { onCleanup, trackPid } from './cleanup.js';
import { sharedNow } from './stats.js';

/** The repository root (bench/lib/ is two levels down). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A child process that is stopped at cleanup whatever happens. */
export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) once the child has exited. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
  stop(graceMs?: number): Promise<void>;
}

function wrap(proc: ChildProcess, name: string): Child {
  if (proc.pid === undefined) throw new Error(`${name}: failed to start`);
  const pid = proc.pid;
  const untrack = trackPid(pid);
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      done = true;
      untrack();
      resolve(code ?? signal ?? -1);
    });
  });
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (done) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!done) proc.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  };
  const unregister = onCleanup(() => stop(3_000));
  void exited.then(unregister);
  return { proc, pid, exited, stop };
}

/**
 * Spawns `command`; stdout is piped (for readiness lines), stderr goes to `logFile` when given
 * (else it is inherited).
 */
export function spawnChild(
  name: string,
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; logFile?: string } = {},
): Child {
  const proc = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', options.logFile === undefined ? 'inherit' : 'pipe'],
  });
  if (options.logFile !== undefined) proc.stderr?.pipe(createWriteStream(options.logFile));
  return wrap(proc, name);
}

/**
 * Forks a TypeScript worker (run through tsx) with an IPC channel. `args` reach it as argv.
 */
export function forkWorker(
  name: string,
  modulePath: string,
  args: readonly string[] = [],
  options: { execArgv?: readonly string[] } = {},
): Child {
  const proc = fork(modulePath, [...args], {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx', ...(options.execArgv ?? [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return wrap(proc, name);
}

/** Waits for the first stdout line matching `re`; rejects on exit or after `timeoutMs`. */
export function waitForLine(
  child: Child,
  re: RegExp,
  timeoutMs = 30_000,
): Promise<RegExpMatchArray> {
  const out = child.proc.stdout;
  if (out === null || out === undefined) return Promise.reject(new Error('stdout is not piped'));
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => finish(new Error(`no line matching ${re} in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      for (const line of buf.split('\n')) {
        const m = re.exec(line);
        if (m !== null) return finish(undefined, m);
      }
    };
    const onExit = (code: number | null): void =>
      finish(new Error(`exited (${code}) before printing ${re}; output: ${buf.slice(-500)}`));
    const finish = (err?: Error, m?: RegExpMatchArray): void => {
      clearTimeout(timer);
      out.off('data', onData);
      child.proc.off('exit', onExit);
      // Keep draining stdout so the child never blocks on a full pipe.
      out.resume();
      if (err !== undefined) reject(err);
      else if (m !== undefined) resolve(m);
    };
    out.on('data', onData);
    child.proc.once('exit', onExit);
  });
}

/** Sends one message to a worker and waits for the first reply of `type`. */
export function request<T>(
  child: Child,
  message: object,
  type: string,
  timeoutMs = 120_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if (typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type) {
        done();
        resolve(m as T);
      }
    };
    const onExit = (code: number | null): void => {
      done();
      reject(new Error(`worker exited (${code}) while waiting for "${type}"`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no "${type}" from worker within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      child.proc.off('message', onMessage);
      child.proc.off('exit', onExit);
    };
    child.proc.on('message', onMessage);
    child.proc.once('exit', onExit);
    if (Object.keys(message).length > 0) child.proc.send(message);
  });
}

// ---- /proc -----------------------------------------------------------------------------------

let clockTicks: number | undefined;

/** The kernel's USER_HZ (utime/stime unit), from `getconf CLK_TCK`; 100 on Linux in practice. */
export function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Memory of a process in MiB: VmRSS (now) and VmHWM (peak RSS since start). */
export function readMemory(pid: number): { rssMiB: number; hwmMiB: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m?.[1] === undefined ? 0 : Number(m[1]);
  };
  return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
}

/** CPU seconds (user + system) a process has used so far. */
export function readCpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (comm) may contain spaces; fields after the closing paren are plain.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so utime (14) and stime (15) are rest[11] and rest[12].
  return (Number(rest[11]) + Number(rest[12])) / clkTck();
}

/** Per-thread CPU seconds of a process (user, system), keyed by "tid name". */
export function readThreadCpu(pid: number): Map<string, { user: number; system: number }> {
  const out = new Map<string, { user: number; system: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
      out.set(`${tid} ${name}`, {
        user: Number(rest[11]) / clkTck(),
        system: Number(rest[12]) / clkTck(),
      });
    } catch {
      // thread exited
    }
  }
  return out;
}

/**
 * CPU by thread name over a window, in cores, split user/system (threads of one name summed):
 * tells the main thread from V8's GC workers and libuv's pool.
 */
export class ThreadCpuWindow {
  readonly #pid: number;
  readonly #before: Map<string, { user: number; system: number }>;
  readonly #t0 = performance.now();

  constructor(pid: number) {
    this.#pid = pid;
    this.#before = readThreadCpu(pid);
  }

  read(): { thread: string; user: number; system: number }[] {
    const wall = (performance.now() - this.#t0) / 1000;
    const after = readThreadCpu(this.#pid);
    const byName = new Map<string, { user: number; system: number }>();
    for (const [key, v] of after) {
      const b = this.#before.get(key) ?? { user: 0, system: 0 };
      const tid = Number(key.split(' ')[0]);
      // The main thread's tid is the pid; name it so it is not merged with other "node" threads.
      const name = tid === this.#pid ? 'main (JS event loop)' : key.slice(key.indexOf(' ') + 1);
      const e = byName.get(name) ?? { user: 0, system: 0 };
      e.user += (v.user - b.user) / wall;
      e.system += (v.system - b.system) / wall;
      byName.set(name, e);
    }
    return [...byName]
      .map(([thread, v]) => ({ thread, ...v }))
      .filter((r) => r.user + r.system > 0.001)
      .sort((a, b) => b.user + b.system - (a.user + a.system));
  }
}

/** CPU use of a pid over a window, in cores (CPU seconds / wall seconds). */
export class CpuWindow {
  readonly #pid: number;
  readonly #cpu0: number;
  readonly #t0: number;

  constructor(pid: number) {
    this.#pid = pid;
    this.#cpu0 = readCpuSeconds(pid);
    this.#t0 = performance.now();
  }

  /** Cores used since construction, and the CPU seconds and wall seconds behind it. */
  read(): { cores: number; cpuSeconds: number; wallSeconds: number } {
    const cpuSeconds = readCpuSeconds(this.#pid) - this.#cpu0;
    const wallSeconds = (performance.now() - this.#t0) / 1000;
    return { cores: cpuSeconds / wallSeconds, cpuSeconds, wallSeconds };
  }
}

/** Samples a pid's RSS every `everyMs`; keeps the peak sample and the last one. */
export class RssSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  peakMiB = 0;
  lastMiB = 0;
  samples = 0;

  constructor(pid: number, everyMs = 250) {
    this.#pid = pid;
    this.sample();
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }

  sample(): number {
    try {
      const { rssMiB } = readMemory(this.#pid);
      this.lastMiB = rssMiB;
      this.peakMiB = Math.max(this.peakMiB, rssMiB);
      this.samples++;
    } catch {
      // the process is gone; keep the last values
    }
    return this.lastMiB;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Estimates each worker's clock offset against ours (ping-pong, offset at the midpoint). */
export async function clockSkew(workers: readonly Child[]): Promise<number> {
  let worst = 0;
  for (const w of workers) {
    for (let i = 0; i < 5; i++) {
      const t0 = sharedNow();
      const { t } = await request<{ t: number }>(w, { type: 'now' }, 'now');
      const t1 = sharedNow();
      worst = Math.max(worst, Math.abs(t - (t0 + t1) / 2) + (t1 - t0) / 2);
    }
  }
  return worst;
}
