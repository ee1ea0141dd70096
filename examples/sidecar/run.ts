/**
 * @module Starts the sidecar example: an agent (in memory, free ports), the plain HTTP apps users,
 * orders and payments (v1 and v2), each under its own `meshwork sidecar`, and the canary of
 * payments (canary.yaml: `x-canary: true` to v2, else 90/10 v1/v2). Prints what to try; Ctrl-C
 * stops everything (each sidecar deregisters, drains and stops its app, then the agent stops).
 * Run: `npm run example:sidecar`. test/e2e/example-sidecar.test.ts runs the same `startExample`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const BIN = here('../../bin/meshwork.js');

/** A process of the example: what it printed, and its exit code (or signal name) once it exits. */
interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | string | null>;
}

/** The running example: where to send requests, and how to stop it. */
export interface RunningExample {
  /** The agent's HTTP URL. */
  readonly registry: string;
  /** The users app behind its sidecar: its sidecar's inbound listener (what other sidecars call). */
  readonly users: string;
  /** The users app's own port (loopback), for a look without the sidecar on the way in. */
  readonly usersApp: string;
  /** Each sidecar's admin URL, by instance name (users, orders, payments-v1, payments-v2). */
  readonly admin: Readonly<Record<string, string>>;
  /** Stops the sidecars (each stops its app), then the agent; resolves with every exit code. */
  stop(): Promise<Record<string, number | string | null>>;
}

export interface ExampleOptions {
  /** Where each process's output goes (default: this process's stdout, prefixed by its name). */
  readonly log?: (name: string, text: string) => void;
  /** The agent's HTTP listen address (default 127.0.0.1:0). */
  readonly http?: string;
}

/** A free TCP port on 127.0.0.1 (for the apps: a sidecar needs its app's port up front). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** Spawns a process (in a process group of its own: Ctrl-C reaches only this script). */
function spawnProc(
  name: string,
  args: string[],
  env: Record<string, string>,
  log: (name: string, text: string) => void,
): Proc & { output: (pattern: RegExp) => Promise<RegExpExecArray> } {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const waiting = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString();
    log(name, d.toString());
    for (const w of [...waiting]) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', (d: Buffer) => log(name, d.toString()));
  const exited = new Promise<number | string | null>((r) =>
    child.once('exit', (code, signal) => r(code ?? signal)),
  );
  const output = (pattern: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const m = pattern.exec(out);
        if (m === null) return;
        waiting.delete(check);
        resolve(m);
      };
      waiting.add(check);
      check();
      void exited.then((code) =>
        reject(new Error(`${name} exited (${String(code)}) before printing ${String(pattern)}`)),
      );
    });
  return { name, child, exited, output };
}

/** Polls `probe` every 100 ms until it resolves true; gives up with `what` after `ms`. */
async function waitFor(what: string, probe: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** GETs `url` (with `headers`) and answers its JSON body when it is a 200, else undefined. */
export async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
  const res = await fetch(url, { headers });
  const body: unknown = await res.json().catch(() => undefined);
  return res.status === 200 ? body : undefined;
}

/** The payments version an answer of users' `/checkout` came from. */
export function paymentsVersion(answer: unknown): string | undefined {
  const a = answer as { order?: { payment?: { version?: unknown } } } | undefined;
  const v = a?.order?.payment?.version;
  return typeof v === 'string' ? v : undefined;
}

/** Starts the whole example and resolves once every sidecar is ready and the canary routes. */
export async function startExample(options: ExampleOptions = {}): Promise<RunningExample> {
  const log =
    options.log ??
    ((name: string, text: string): void => {
      for (const line of text.split('\n'))
        if (line !== '') process.stdout.write(`[${name}] ${line}\n`);
    });
  const dataDir = await mkdtemp(join(tmpdir(), 'meshwork-sidecar-example-'));
  const sidecars: Proc[] = [];
  const agent = spawnProc(
    'agent',
    [BIN, 'agent', '--dev', '--http', options.http ?? '127.0.0.1:0', '--dns', 'off'],
    { MESHWORK_AGENT__LOG_LEVEL: 'warn' },
    log,
  );

  const stop = async (): Promise<Record<string, number | string | null>> => {
    const codes: Record<string, number | string | null> = {};
    for (const s of sidecars) if (s.child.exitCode === null) s.child.kill('SIGTERM');
    for (const s of sidecars) codes[s.name] = await s.exited;
    if (agent.child.exitCode === null) agent.child.kill('SIGTERM');
    codes['agent'] = await agent.exited;
    await rm(dataDir, { recursive: true, force: true });
    return codes;
  };

  try {
    const registry = (await agent.output(/listening on (http:\/\/\S+)/))[1] as string;
    const apply = spawnProc(
      'apply',
      [BIN, 'apply', '-f', here('./canary.yaml'), '--registry', registry],
      {},
      log,
    );
    const applied = await apply.exited;
    if (applied !== 0) throw new Error(`meshwork apply -f canary.yaml exited ${String(applied)}`);

    const admin: Record<string, string> = {};
    const inbound: Record<string, string> = {};
    const appPorts: Record<string, number> = {};
    const startApp = async (
      name: string,
      service: string,
      file: string,
      extra: string[] = [],
      env: Record<string, string> = {},
    ): Promise<void> => {
      const appPort = await freePort();
      appPorts[name] = appPort;
      const sidecar = spawnProc(
        name,
        [
          BIN,
          'sidecar',
          '--service',
          service,
          '--app-port',
          String(appPort),
          '--app-health',
          '/healthz',
          ...['--inbound', '--outbound', '--admin'].flatMap((flag) => [flag, '127.0.0.1:0']),
          '--registry',
          registry,
          '--data-dir',
          join(dataDir, name),
          ...extra,
          '--',
          process.execPath,
          '--import',
          'tsx',
          here(file),
        ],
        {
          ...env,
          PORT: String(appPort),
          MESHWORK_SIDECAR__LOG_LEVEL: 'warn',
          MESHWORK_SIDECAR__HEALTH_INTERVAL_MS: '500',
          MESHWORK_SIDECAR__HEALTH_TIMEOUT_MS: '500',
          // The app starts after the sidecar: its first refused probes are not failures.
          MESHWORK_SIDECAR__HEALTH_START_PERIOD_MS: '10000',
        },
        log,
      );
      sidecars.push(sidecar);
      const m = await sidecar.output(
        /inbound (http:\/\/\S+), outbound (http:\/\/\S+) \(admin (http:\/\/\S+)\)/,
      );
      inbound[name] = m[1] as string;
      admin[name] = m[3] as string;
    };
    await Promise.all([
      startApp('payments-v1', 'payments', './payments.ts', ['--meta', 'version=v1'], {
        VERSION: 'v1',
      }),
      startApp('payments-v2', 'payments', './payments.ts', ['--meta', 'version=v2'], {
        VERSION: 'v2',
      }),
      startApp('orders', 'orders', './orders.ts'),
      startApp('users', 'users', './users.ts'),
    ]);
    for (const [name, url] of Object.entries(admin))
      await waitFor(`${name}'s sidecar to be ready`, async () => (await fetch(`${url}/ready`)).ok);

    const users = inbound['users'] as string;
    // Ready means every snapshot holds the canary and both subsets have a passing instance.
    await waitFor('the canary header to reach payments v2', async () => {
      const answer = await getJson(`${users}/checkout`, { 'x-canary': 'true' });
      return paymentsVersion(answer) === 'v2';
    });
    await waitFor('payments v1 to answer', async () => {
      for (let i = 0; i < 10; i++)
        if (paymentsVersion(await getJson(`${users}/checkout`)) === 'v1') return true;
      return false;
    });
    return {
      registry,
      users,
      usersApp: `http://127.0.0.1:${appPorts['users'] as number}`,
      admin,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

const isMain = process.argv[1] !== undefined && here(process.argv[1]) === here('./run.ts');
if (isMain) {
  const example = await startExample();
  console.log(`
The example is up: users, orders and payments (v1, v2) are plain HTTP apps behind sidecars.
users calls orders, orders calls payments, each through its sidecar (MESHWORK_OUTBOUND, Host: <service>).
Try:
  # users -> orders -> payments, in through users' sidecar: payments v1 9 times in 10, else v2
  curl -s ${example.users}/checkout
  # the canary header: always payments v2
  curl -s -H 'x-canary: true' ${example.users}/checkout
  # the 90/10 split over 20 requests
  for i in $(seq 20); do curl -s ${example.users}/checkout; echo; done | grep -o '"version":"v[12]"' | sort | uniq -c
  # the users app on its own port (its calls still go out through its sidecar)
  curl -s ${example.usersApp}/checkout
  # the routes orders' sidecar runs, and the payments instances with their version meta
  curl -s ${example.admin['orders']}/config_dump
  curl -s ${example.registry}/api/v1/services/payments/instances
Ctrl-C stops everything (each sidecar deregisters, drains and stops its app; then the agent).`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void example.stop().then((codes) => {
      const failed = Object.entries(codes).filter(([, code]) => code !== 0);
      for (const [name, code] of failed) console.error(`${name} exited ${String(code)}`);
      process.exit(failed.length === 0 ? 0 : 1);
    });
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
