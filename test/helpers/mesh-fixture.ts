/**
 * @module Test helpers for end-to-end mesh tests: one `meshwork agent` process, fixture apps
 * (test/fixtures/*.mjs) behind `meshwork sidecar` processes and `meshwork gateway --mesh`
 * processes pointed at it, their data under one temp dir; `stop` sends SIGTERM to them in the
 * reverse order they started, waits for them all, then stops the agent and removes the dir.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FAST_SIDECAR_HEALTH,
  runCli,
  spawnAgent,
  spawnGateway,
  spawnSidecar,
  spawnSidecarWithApp,
  stopSidecars,
  type AgentProcess,
  type AppSidecarProcess,
  type GatewayProcess,
} from './cli.js';
import { freePort } from './ports.js';

/** The agent most mesh tests run: in memory, with its CA (`--dev`), quiet. */
export const DEV_AGENT_ARGS: readonly string[] = Object.freeze(['--dev', '--log-level', 'warn']);

/** A process the fixture stops: SIGTERM unless it has exited, then its exit awaited. */
export interface StoppableProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;
}

export interface MeshSidecarOptions {
  /**
   * A fixture app the sidecar starts (`-- node <app>`), on a free port it gets as APP_PORT, with
   * APP_NAME the service, probed at /healthz. Absent: no app (`--app-port 1`, a caller only).
   */
  readonly app?: string;
  /** More sidecar flags (before the app's command). */
  readonly flags?: readonly string[];
  /** More env, on top of FAST_SIDECAR_HEALTH and the app's. */
  readonly env?: Record<string, string>;
  /** Its data dir under the fixture's dir; default: the service. */
  readonly dataDir?: string;
}

/** A sidecar process and the port of its app (1: none). */
export type MeshSidecar = AppSidecarProcess;

/** See the module comment; `MeshFixture.start` in a `before`, `stop` in the `after`. */
export class MeshFixture {
  readonly dir: string;
  readonly agent: AgentProcess;
  /** Everything started, in order (stopped in reverse). */
  readonly #started: StoppableProcess[] = [];

  private constructor(dir: string, agent: AgentProcess) {
    this.dir = dir;
    this.agent = agent;
  }

  /** Makes the temp dir (`prefix` + random) and spawns `meshwork agent ...agentArgs`. */
  static async start(
    prefix: string,
    agentArgs: readonly string[] = DEV_AGENT_ARGS,
  ): Promise<MeshFixture> {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    try {
      return new MeshFixture(dir, await spawnAgent(agentArgs));
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** `meshwork sidecar --service <service> --registry <agent>` with `options`. */
  async sidecar(service: string, options: MeshSidecarOptions = {}): Promise<MeshSidecar> {
    const args = [
      ...['--service', service],
      ...['--registry', this.agent.url, '--data-dir', join(this.dir, options.dataDir ?? service)],
      ...(options.flags ?? []),
    ];
    const env = { ...FAST_SIDECAR_HEALTH, ...options.env };
    const sidecar =
      options.app === undefined
        ? Object.assign(await spawnSidecar(['--app-port', '1', ...args], env), { appPort: 1 })
        : await spawnSidecarWithApp(options.app, ['--app-health', '/healthz', ...args], {
            APP_NAME: service,
            ...env,
          });
    return this.track(sidecar);
  }

  /** `meshwork gateway --mesh --registry <agent>`, its data dir `name` under the fixture's. */
  async gateway(
    name: string,
    flags: readonly string[] = [],
    env: Record<string, string> = {},
  ): Promise<GatewayProcess> {
    const args = ['--mesh', '--registry', this.agent.url, '--data-dir', join(this.dir, name)];
    return this.track(await spawnGateway([...args, ...flags], env));
  }

  /** A fixture app without a sidecar, on a free port it gets as APP_PORT, named APP_NAME `name`. */
  async app(
    path: string,
    name: string,
    env: Record<string, string> = {},
  ): Promise<StoppableProcess & { readonly port: number }> {
    const port = await freePort();
    const child = spawn(process.execPath, [path], {
      env: { ...process.env, APP_PORT: String(port), APP_NAME: name, ...env },
      stdio: 'ignore',
    });
    return this.track({ child, exited: once(child, 'exit'), port });
  }

  /** A process of the test's own (an app, a Prometheus) to stop with the rest. */
  track<P extends StoppableProcess>(p: P): P {
    this.#started.push(p);
    return p;
  }

  /** `meshwork apply -f` of `yaml`, written to `file` in the fixture's dir; fails the test if refused. */
  async apply(yaml: string, file = 'mesh.yaml'): Promise<void> {
    const path = join(this.dir, file);
    writeFileSync(path, yaml);
    const r = await runCli(['apply', '-f', path, '--registry', this.agent.url]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  }

  /**
   * SIGTERM to what is running, last started first, then the agent; removes the dir. What the
   * sidecars left running (the app of one killed with -9) is killed by stopSidecars.
   */
  async stop(): Promise<void> {
    const all = [...this.#started].reverse();
    for (const p of all)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
    await Promise.all(all.map((p) => p.exited));
    await stopSidecars(all);
    this.agent.child.kill('SIGTERM');
    await this.agent.exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
