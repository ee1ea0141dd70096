/** @module TcpCheckProbe: the `tcp` check kind, passing when a TCP connection opens. */
import { connect } from 'node:net';
import { systemClock, type Clock } from '../../../core/clock.js';
import type { CheckDefinition } from '../../../core/types.js';
import type { CheckProbe, ProbeResult } from '../health-types.js';
import { describeError, startProbeDeadline } from './probe-deadline.js';

export interface TcpCheckProbeOptions {
  /** Drives the connect deadline. Default: the system clock. */
  readonly clock?: Clock;
}

/**
 * Runs `tcp` checks: passing when a connection to `def.tcp.address` opens within `timeoutMs`
 * (it is closed at once), critical with the error otherwise.
 */
export class TcpCheckProbe implements CheckProbe {
  readonly kind = 'tcp' as const;
  readonly #clock: Clock;

  constructor(options: TcpCheckProbeOptions = {}) {
    this.#clock = options.clock ?? systemClock;
  }

  probe(def: CheckDefinition, signal: AbortSignal): Promise<ProbeResult> {
    const address = def.tcp?.address;
    if (address === undefined) {
      return Promise.resolve({ status: 'critical', output: `check "${def.id}" has no tcp target` });
    }
    const label = `TCP connect ${address}`;
    const target = parseAddress(address);
    if (target === undefined) {
      return Promise.resolve({ status: 'critical', output: `${label}: invalid address` });
    }
    return new Promise<ProbeResult>((resolve) => {
      const deadline = startProbeDeadline(this.#clock, def.timeoutMs, signal);
      const socket = connect({ host: target.host, port: target.port });
      const finish = (result: ProbeResult): void => {
        deadline.dispose();
        deadline.signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve(result);
      };
      const onAbort = (): void =>
        finish({
          status: 'critical',
          output: `${label}: ${deadline.timedOut() ? `timed out after ${def.timeoutMs} ms` : 'aborted'}`,
        });
      socket.once('connect', () => finish({ status: 'passing', output: `${label}: Success` }));
      socket.once('error', (err) =>
        finish({ status: 'critical', output: `${label}: ${describeError(err)}` }),
      );
      if (deadline.signal.aborted) onAbort();
      else deadline.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Creates a {@link TcpCheckProbe}. */
export function createTcpCheckProbe(options: TcpCheckProbeOptions = {}): TcpCheckProbe {
  return new TcpCheckProbe(options);
}

/** Splits `host:port` or `[v6]:port`. */
export function parseAddress(address: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address);
  if (m === null) return undefined;
  const port = Number(m[3]);
  const host = m[1] ?? m[2];
  if (host === undefined || port < 1 || port > 65535) return undefined;
  return { host, port };
}
