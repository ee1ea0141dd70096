/**
 * @module Test helpers: spawn the real `meshwork` binary (bin/meshwork.js -> dist/), or run one
 * command in-process.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import type { Command, Io } from '../../src/cli/command.js';

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
 * Spawns `meshwork sidecar --inbound/--outbound/--admin 127.0.0.1:0 ...args` (log level warn
 * unless `env` says otherwise) and resolves once it prints where it listens.
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
  const child = spawn(process.execPath, [BIN, 'sidecar', ...listen, ...args], {
    env: { ...process.env, MESHWORK_SIDECAR__LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal)),
  );
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
