/** @module The built-in check probes, by kind (`ttl` has none: heartbeats drive it). */
import type { Clock } from '../../../core/clock.js';
import type { CheckKind } from '../../../core/types.js';
import type { CheckProbe } from '../health-types.js';
import { HttpCheckProbe } from './http-check-probe.js';
import { TcpCheckProbe } from './tcp-check-probe.js';

export {
  HttpCheckProbe,
  createHttpCheckProbe,
  HTTP_CHECK_MAX_OUTPUT_BYTES,
} from './http-check-probe.js';
export type { HttpCheckProbeOptions } from './http-check-probe.js';
export { TcpCheckProbe, createTcpCheckProbe } from './tcp-check-probe.js';
export type { TcpCheckProbeOptions } from './tcp-check-probe.js';

export interface DefaultProbesOptions {
  /** Drives probe deadlines. Default: the system clock. */
  readonly clock?: Clock;
  /** Named in the `x-meshwork-agent` header of HTTP checks. */
  readonly agentName?: string;
}

/**
 * The probes for every probed kind. A map rather than a switch, so a kind (grpc) is added by
 * setting one more entry.
 *
 * @example
 * const probes = createDefaultProbes({ clock });
 * const manager = createHealthManager({ clock, logger, host, probes });
 */
export function createDefaultProbes(
  options: DefaultProbesOptions = {},
): Map<CheckKind, CheckProbe> {
  const probes = new Map<CheckKind, CheckProbe>();
  probes.set('http', new HttpCheckProbe(options));
  probes.set('tcp', new TcpCheckProbe(options));
  return probes;
}

/** Closes the probes that hold resources (pooled connections). */
export async function closeProbes(probes: ReadonlyMap<CheckKind, CheckProbe>): Promise<void> {
  await Promise.all(
    [...probes.values()].map((p) =>
      'close' in p && typeof p.close === 'function'
        ? (p.close as () => Promise<void>)()
        : undefined,
    ),
  );
}
