/**
 * @module HealthEndpoints: liveness, readiness and startup handlers for node:http, express and
 * fastify, with pluggable dependency checks (database, cache...). Answers
 * `application/health+json` (draft-inadarei-api-health-check: `{ status: pass|warn|fail, checks }`)
 * with 200 for pass, 503 for fail, and for warn 200 (Kubernetes reads any 2xx/3xx as success) or
 * 429 with `warnStatusCode: 429` (the agent's HTTP checks read 429 as warning, as Consul's do).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';

/** A dependency check: resolve (or `true`) = pass, `'warn'` = degraded, reject or `false` = fail. */
export type DependencyCheck = () =>
  Promise<boolean | void | 'pass' | 'warn' | 'fail'> | boolean | void | 'pass' | 'warn' | 'fail';

export type ProbeKind = 'live' | 'ready' | 'startup';

export interface HealthEndpointsOptions {
  /** Checked by /health/live: only what a restart would fix (a deadlock, a wedged pool). */
  readonly liveness?: Readonly<Record<string, DependencyCheck>>;
  /** Checked by /health/ready: what this instance needs to serve (database, cache). */
  readonly readiness?: Readonly<Record<string, DependencyCheck>>;
  /** /health/startup passes once this does (default: once `markStarted()` was called). */
  readonly startup?: DependencyCheck;
  /** Each check fails if it takes longer (default 2,000 ms). */
  readonly checkTimeoutMs?: number;
  /** HTTP status for `warn` (default 200; 429 makes the agent's HTTP check say warning). */
  readonly warnStatusCode?: 200 | 429;
  readonly clock?: Clock;
}

export const DEFAULT_HEALTH_ENDPOINTS_OPTIONS = Object.freeze({
  checkTimeoutMs: 2_000,
  warnStatusCode: 200 as const,
});

export interface HealthReport {
  readonly status: 'pass' | 'warn' | 'fail';
  readonly checks: Record<string, { status: 'pass' | 'warn' | 'fail'; output?: string }[]>;
}

/** Minimal shapes of fastify's request and reply, so the SDK need not depend on fastify. */
interface FastifyReplyLike {
  code(statusCode: number): FastifyReplyLike;
  header(name: string, value: string): FastifyReplyLike;
  send(payload: string): unknown;
}
interface FastifyLike {
  get(
    path: string,
    handler: (request: unknown, reply: FastifyReplyLike) => Promise<unknown>,
  ): unknown;
}

export const HEALTH_PATHS: Readonly<Record<ProbeKind, string>> = Object.freeze({
  live: '/health/live',
  ready: '/health/ready',
  startup: '/health/startup',
});

/** The three probes of one service. */
export class HealthEndpoints {
  readonly #options: HealthEndpointsOptions;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #warnStatus: number;
  #started = false;
  #draining = false;

  constructor(options: HealthEndpointsOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.checkTimeoutMs ?? DEFAULT_HEALTH_ENDPOINTS_OPTIONS.checkTimeoutMs;
    this.#warnStatus = options.warnStatusCode ?? DEFAULT_HEALTH_ENDPOINTS_OPTIONS.warnStatusCode;
  }

  /** Startup is done (used when no `startup` check is given). */
  markStarted(): void {
    this.#started = true;
  }

  /** From now on readiness fails (graceful shutdown: consumers stop sending new requests). */
  setDraining(): void {
    this.#draining = true;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Runs one probe's checks (concurrently, each with the timeout). */
  async evaluate(kind: ProbeKind): Promise<{ statusCode: number; report: HealthReport }> {
    const checks: Record<string, DependencyCheck> = {};
    if (kind === 'live') Object.assign(checks, this.#options.liveness);
    if (kind === 'ready') {
      Object.assign(checks, this.#options.readiness);
      checks.draining = () => (this.#draining ? 'fail' : 'pass');
    }
    if (kind === 'startup')
      checks.startup = this.#options.startup ?? (() => (this.#started ? 'pass' : 'fail'));
    const entries = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => [name, await this.#run(check)] as const),
    );
    const report: HealthReport = {
      status: worst(entries.map(([, r]) => r.status)),
      checks: Object.fromEntries(entries.map(([name, r]) => [name, [r]])),
    };
    const statusCode =
      report.status === 'pass' ? 200 : report.status === 'warn' ? this.#warnStatus : 503;
    return { statusCode, report };
  }

  /**
   * A node:http (and express) handler for one probe.
   *
   * @example
   * app.get('/health/ready', health.handler('ready'));
   */
  handler(kind: ProbeKind): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => {
      void this.evaluate(kind).then(({ statusCode, report }) => {
        res.writeHead(statusCode, { 'content-type': 'application/health+json' });
        res.end(JSON.stringify(report));
      });
    };
  }

  /**
   * Answers the request if its path is one of {@link HEALTH_PATHS}; returns whether it did. For
   * a plain node:http server: `if (health.handle(req, res)) return;`.
   */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const path = (req.url ?? '').split('?')[0];
    const kind = (Object.keys(HEALTH_PATHS) as ProbeKind[]).find((k) => HEALTH_PATHS[k] === path);
    if (kind === undefined) return false;
    this.handler(kind)(req, res);
    return true;
  }

  /** Registers GET /health/live, /health/ready and /health/startup on a fastify instance. */
  registerFastify(app: FastifyLike): void {
    for (const kind of Object.keys(HEALTH_PATHS) as ProbeKind[]) {
      app.get(HEALTH_PATHS[kind], async (_request, reply) => {
        const { statusCode, report } = await this.evaluate(kind);
        return reply
          .code(statusCode)
          .header('content-type', 'application/health+json')
          .send(JSON.stringify(report));
      });
    }
  }

  async #run(
    check: DependencyCheck,
  ): Promise<{ status: 'pass' | 'warn' | 'fail'; output?: string }> {
    let timer: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(
        () => reject(new Error(`no answer in ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
      timer.unref?.();
    });
    try {
      const r = await Promise.race([Promise.resolve().then(check), timeout]);
      if (r === false || r === 'fail') return { status: 'fail' };
      return { status: r === 'warn' ? 'warn' : 'pass' };
    } catch (err) {
      return { status: 'fail', output: err instanceof Error ? err.message : String(err) };
    } finally {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
    }
  }
}

function worst(statuses: readonly ('pass' | 'warn' | 'fail')[]): 'pass' | 'warn' | 'fail' {
  if (statuses.includes('fail')) return 'fail';
  return statuses.includes('warn') ? 'warn' : 'pass';
}

export function createHealthEndpoints(options?: HealthEndpointsOptions): HealthEndpoints {
  return new HealthEndpoints(options);
}
