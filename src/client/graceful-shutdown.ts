/**
 * @module Graceful shutdown for a service: on SIGTERM/SIGINT, fail readiness, deregister, keep
 * serving for a drain period so consumers' caches drop this instance before it stops answering,
 * then close the servers (in-flight requests finish), run the caller's cleanup and exit 0.
 */
import type { Server } from 'node:http';
import { systemClock, type Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { HealthEndpoints } from './health-endpoints.js';
import type { SelfRegistration } from './self-registration.js';

export interface GracefulShutdownOptions {
  readonly registration?: SelfRegistration;
  readonly health?: HealthEndpoints;
  /** node:http servers to close (for fastify: `app.server`; for express: what `listen` returns). */
  readonly servers?: readonly Server[];
  /**
   * How long to keep serving after the deregistration when the registry cannot say whether its
   * watchers were told (an older agent, a Consul agent): DNS and polling clients need their TTL
   * or poll interval. Default 3,000 ms.
   */
  readonly drainMs?: number;
  /**
   * How long to keep serving once the agent says every watcher of the service was sent the
   * removal (`notified`): time for them to read it and for requests already routed here to
   * arrive. Default 500 ms.
   */
  readonly notifiedDrainMs?: number;
  /** In-flight requests get this long to finish once the servers stop accepting. */
  readonly closeTimeoutMs?: number;
  readonly signals?: readonly NodeJS.Signals[];
  /** Called last (close databases...). */
  readonly onShutdown?: () => Promise<void> | void;
  /** Default `process.exit`. */
  readonly exit?: (code: number) => void;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export const DEFAULT_GRACEFUL_SHUTDOWN_OPTIONS = Object.freeze({
  drainMs: 3_000,
  notifiedDrainMs: 500,
  closeTimeoutMs: 10_000,
  signals: Object.freeze(['SIGTERM', 'SIGINT'] as NodeJS.Signals[]),
});

export interface GracefulShutdown {
  /** Runs the shutdown (also what the signals do); the second call returns the first's promise. */
  shutdown(): Promise<void>;
  /** Removes the signal handlers. */
  uninstall(): void;
}

/**
 * Installs the signal handlers.
 *
 * @example
 * installGracefulShutdown({ registration, health, servers: [server] });
 */
export function installGracefulShutdown(options: GracefulShutdownOptions): GracefulShutdown {
  const d = DEFAULT_GRACEFUL_SHUTDOWN_OPTIONS;
  const clock = options.clock ?? systemClock;
  const log = (options.logger ?? silentLogger).child({ component: 'shutdown' });
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const signals = options.signals ?? d.signals;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => clock.setTimeout(resolve, ms));
  let running: Promise<void> | undefined;

  const run = async (): Promise<void> => {
    options.health?.setDraining();
    let drainMs = options.drainMs ?? d.drainMs;
    try {
      const r = await options.registration?.deregister();
      if (r?.notified !== undefined) drainMs = options.notifiedDrainMs ?? d.notifiedDrainMs;
      log.info({ index: r?.index, notified: r?.notified, drainMs }, 'deregistered; draining');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'deregistration failed; draining anyway');
    }
    await sleep(drainMs);
    await Promise.all((options.servers ?? []).map((s) => closeServer(s, options, clock)));
    try {
      await options.onShutdown?.();
    } catch (err) {
      log.error({ err: (err as Error).message }, 'shutdown hook failed');
    }
    log.info({}, 'stopped');
    exit(0);
  };
  const shutdown = (): Promise<void> => (running ??= run());
  const onSignal = (): void => void shutdown();
  for (const s of signals) process.on(s, onSignal);
  return {
    shutdown,
    uninstall: () => {
      for (const s of signals) process.off(s, onSignal);
    },
  };
}

/** Stops accepting, lets in-flight requests finish, then cuts what is left after the timeout. */
async function closeServer(
  server: Server,
  options: GracefulShutdownOptions,
  clock: Clock,
): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = clock.setTimeout(
    () => server.closeAllConnections(),
    options.closeTimeoutMs ?? DEFAULT_GRACEFUL_SHUTDOWN_OPTIONS.closeTimeoutMs,
  );
  await closed;
  clock.clearTimeout(timer);
}
