/**
 * @module Test helpers: spawn the real `meshwork` binary (bin/meshwork.js -> dist/), or run one
 * command in-process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import type { Command, Io } from '../../src/cli/command.js';
import { freePort } from './ports.js';

export const BIN = fileURLToPath(new URL('../../bin/meshwork.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `meshwork ...args` to completion. */
export async function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** The HTTPS listener's URL, when the args open one (`--https`). */
  readonly httpsUrl: string | undefined;
  /** The DNS port (UDP and TCP), unless the args turned DNS off. */
  readonly dnsPort: number | undefined;
  /** Everything the agent wrote to stderr so far (pino JSON lines). */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string | null>;
  /** Resolves once stderr matches `pattern`. */
  waitForStderr(pattern: RegExp): Promise<void>;
}

/** Spawns `meshwork agent ...args` and resolves once it prints its URL. */
export async function spawnAgent(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<AgentProcess> {
  const listen = ['--http', '127.0.0.1:0', '--dns', '127.0.0.1:0'];
  const child = spawn(process.execPath, [BIN, 'agent', ...listen, ...args], {
    env: { ...process.env, MESHWORK_AGENT__LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const watchers = new Set<() => void>();
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of [...watchers]) w();
  });
  const waitForStderr = (pattern: RegExp): Promise<void> =>
    new Promise((resolve) => {
      const check = (): void => {
        if (pattern.test(err)) {
          watchers.delete(check);
          resolve();
        }
      };
      watchers.add(check);
      check();
    });
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const dnsOff = args.some((a, i) => a === 'off' && args[i - 1] === '--dns');
  const https = args.some((a, i) => a !== 'off' && args[i - 1] === '--https');
  const [url, httpsUrl, dnsPort] = await new Promise<
    [string, string | undefined, number | undefined]
  >((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      const tls = /HTTPS on (https:\/\/\S+)/.exec(out);
      const dns = /DNS on \S+:(\d+) /.exec(out);
      if (m?.[1] !== undefined && (dnsOff || dns !== null) && (!https || tls !== null)) {
        child.stdout?.off('data', onData);
        resolve([m[1], tls?.[1], dns === null ? undefined : Number(dns[1])]);
      }
    };
    child.stdout?.on('data', onData);
    void exited.then((code) =>
      reject(new Error(`agent exited (${String(code)}) before listening:\n${err}`)),
    );
  });
  return { child, url, httpsUrl, dnsPort, stderr: () => err, exited, waitForStderr };
}

/** A suite's agent process, the env that points the CLI at it, and a temp dir for its files. */
export interface CliSuite {
  readonly agent: AgentProcess;
  readonly env: Record<string, string>;
  readonly dir: string;
}

/**
 * Spawns `meshwork agent ...args` before the calling suite's tests and stops it (SIGTERM) after
 * them, removing the suite's temp dir; read `agent` and `env` inside tests and hooks only.
 */
export function useAgentProcess(args: readonly string[]): CliSuite {
  const dir = mkdtempSync(join(tmpdir(), 'meshwork-cli-'));
  let agent: AgentProcess | undefined;
  before(async () => {
    agent = await spawnAgent(args);
  });
  after(async () => {
    agent?.child.kill('SIGTERM');
    await agent?.exited;
    rmSync(dir, { recursive: true, force: true });
  });
  const started = (): AgentProcess => {
    if (agent === undefined) throw new Error('the agent process has not started');
    return agent;
  };
  return {
    dir,
    get agent() {
      return started();
    },
    get env() {
      return { MESHWORK_ADDR: started().url };
    },
  };
}

/** An Io whose output goes nowhere, for running a command in-process. */
export function silentIo(): Io {
  return { stdout: new PassThrough(), stderr: new PassThrough(), env: {} };
}

/** What running `command` in-process throws (fails the test if it returns instead). */
export async function refusal(
  command: Command,
  argv: readonly string[],
): Promise<{ code: string; message: string }> {
  return command.run(argv, silentIo()).then(
    () => assert.fail(`${command.name} ${argv.join(' ')} did not throw`),
    (err: unknown) => err as { code: string; message: string },
  );
}

/** A `meshwork gateway` process. */
export interface GatewayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly adminUrl: string;
  readonly exited: Promise<number | string | null>;
  stderr(): string;
}

/**
 * Spawns `meshwork gateway --listen 127.0.0.1:0 --admin 127.0.0.1:0 ...args` (log level warn
 * unless `env` says otherwise) and resolves once it prints where it listens.
 */
export async function spawnGateway(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  const child = spawn(
    process.execPath,
    [BIN, 'gateway', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...args],
    {
      env: { ...process.env, MESHWORK_GATEWAY__LOG_LEVEL: 'warn', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  const [url, adminUrl] = await new Promise<[string, string]>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+) \(admin (http:\/\/\S+)\)/.exec(out);
      if (m?.[1] !== undefined && m[2] !== undefined) resolve([m[1], m[2]]);
    });
    void exited.then((code) => reject(new Error(`gateway exited (${String(code)}):\n${err}`)));
  });
  return { child, url, adminUrl, exited, stderr: () => err };
}

/** Sidecar env for fast health checks (probes every 100 ms, a 2 s TTL): instances pass at once. */
export const FAST_SIDECAR_HEALTH = Object.freeze({
  MESHWORK_SIDECAR__HEALTH_INTERVAL_MS: '100',
  MESHWORK_SIDECAR__HEALTH_TIMEOUT_MS: '100',
  MESHWORK_SIDECAR__HEALTH_TTL_MS: '2000',
});

/** A `meshwork sidecar` process. */
export interface SidecarProcess {
  readonly child: ChildProcess;
  readonly inboundUrl: string;
  readonly outboundUrl: string;
  readonly adminUrl: string;
  readonly exited: Promise<number | string | null>;
  /** Everything written to stdout so far (the app's output too: it inherits the sidecar's). */
  stdout(): string;
  stderr(): string;
}

/**
 * The env var that marks a sidecar spawnSidecar started, and everything it starts: its app inherits
 * the sidecar's environment (src/sidecar/app-process.ts), and the app's own children inherit the
 * app's. Its value, `<this process's pid>.<n>`, names one sidecar.
 */
const SIDECAR_MARK = 'MESHWORK_TEST_SIDECAR';

/** A sidecar spawnSidecar started, until stopSidecars has stopped it and swept what it left. */
interface TrackedSidecar {
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;
  /** Its SIDECAR_MARK value. */
  readonly mark: string;
}

/** Every sidecar of this process (a test file) not yet stopped by stopSidecars, by its child. */
const trackedSidecars = new Map<ChildProcess, TrackedSidecar>();
let sidecarsSpawned = 0;

/**
 * The pids of the running processes whose environment holds SIDECAR_MARK with one of `marks`:
 * /proc/<pid>/environ is the environment a process started with, and it is readable for this
 * user's processes only (another user's throw EACCES; a process that just ended, ENOENT).
 */
function markedProcesses(marks: ReadonlySet<string>): number[] {
  const prefix = `${SIDECAR_MARK}=`;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
    } catch {
      continue;
    }
    const found = environ.split('\0').find((v) => v.startsWith(prefix));
    if (found !== undefined && marks.has(found.slice(prefix.length))) pids.push(Number(entry));
  }
  return pids;
}

/**
 * Stops the sidecars spawnSidecar started in this process (or those of `only`; other processes
 * there are left alone) and everything they left running, at once and on any path: a test's
 * `afterEach`/`after`, also after a failure in mid-test. A test that wants a sidecar's graceful
 * stop (SIGTERM) and its exit code does that itself first; here a sidecar still running gets
 * SIGKILL. Then its app, and any process the app started, get SIGKILL too.
 *
 * The apps are found by their environment (SIDECAR_MARK), not by the pid the fixture app prints
 * (`app-start {...}`) nor by a process group. The sidecar starts its app in a process group and
 * session of its own (`detached`, so a Ctrl-C reaches the sidecar only), so killing the sidecar's
 * group misses it; and once the sidecar is gone (kill -9) the app is reparented, so neither the
 * sidecar's pid nor its children lead to it. A printed pid covers only the apps that print one,
 * and only once they did: an app killed before its report, or another fixture app, would be
 * missed. The mark is inherited by any app and its children, whatever they print, and outlives
 * the sidecar. (Linux: it reads /proc, as other e2e tests do.)
 *
 * Last, the sidecars' stdout and stderr pipes are closed on this side: an app writes to the
 * sidecar's stdout, which is this process's pipe, and a pipe held open keeps the test file's
 * process running (once, in CI, for 10+ minutes after a failure).
 */
export async function stopSidecars(
  only?: Iterable<{ readonly child: ChildProcess }>,
): Promise<void> {
  const stopping =
    only === undefined
      ? [...trackedSidecars.values()]
      : [...only].flatMap((p) => trackedSidecars.get(p.child) ?? []);
  // A no-op for a sidecar that has exited: node signals a child only while it holds its handle.
  for (const s of stopping) s.child.kill('SIGKILL');
  await Promise.all(stopping.map((s) => s.exited));
  // The sidecars are gone, so no new app can start: one pass finds every app left.
  for (const pid of markedProcesses(new Set(stopping.map((s) => s.mark)))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  for (const s of stopping) {
    s.child.stdout?.destroy();
    s.child.stderr?.destroy();
    trackedSidecars.delete(s.child);
  }
}

/**
 * Spawns `meshwork sidecar --inbound/--outbound/--admin 127.0.0.1:0 ...args` (log level warn
 * unless `env` says otherwise) and resolves once it prints where it listens. The sidecar, its app
 * and the app's children are tracked until stopSidecars stops them.
 */
export async function spawnSidecar(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<SidecarProcess> {
  const listen = [
    '--inbound',
    '127.0.0.1:0',
    '--outbound',
    '127.0.0.1:0',
    '--admin',
    '127.0.0.1:0',
  ];
  const mark = `${process.pid}.${++sidecarsSpawned}`;
  const child = spawn(process.execPath, [BIN, 'sidecar', ...listen, ...args], {
    env: { ...process.env, MESHWORK_SIDECAR__LOG_LEVEL: 'warn', ...env, [SIDECAR_MARK]: mark },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
  // Tracked at once: one that fails to start is swept too.
  trackedSidecars.set(child, { child, exited, mark });
  const urls = await new Promise<[string, string, string]>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /inbound (http:\/\/\S+), outbound (http:\/\/\S+) \(admin (http:\/\/\S+)\)/.exec(
        out,
      );
      if (m !== null) resolve([m[1] as string, m[2] as string, m[3] as string]);
    });
    // 'close', not 'exit': stdout is read to its end first (a job app may end the sidecar at once).
    child.once('close', (code) => reject(new Error(`sidecar exited (${String(code)}):\n${err}`)));
  });
  return {
    child,
    inboundUrl: urls[0],
    outboundUrl: urls[1],
    adminUrl: urls[2],
    exited,
    stdout: () => out,
    stderr: () => err,
  };
}

/** A sidecar spawnSidecarWithApp started, and the port of its app. */
export type AppSidecarProcess = SidecarProcess & { readonly appPort: number };

/**
 * spawnSidecar fronting the fixture app at `app` (`-- node <app>`), which listens on APP_PORT: a
 * free loopback port (or `appPort`, e.g. the one of a sidecar restarted on the same app port),
 * given to the sidecar as `--app-port`.
 */
export async function spawnSidecarWithApp(
  app: string,
  args: readonly string[],
  env: Record<string, string> = {},
  appPort?: number,
): Promise<AppSidecarProcess> {
  const port = appPort ?? (await freePort());
  const sidecar = await spawnSidecar(
    ['--app-port', String(port), ...args, '--', process.execPath, app],
    { APP_PORT: String(port), ...env },
  );
  return Object.assign(sidecar, { appPort: port });
}
