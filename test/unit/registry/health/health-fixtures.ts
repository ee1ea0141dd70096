/** @module Builders and fakes shared by the health unit tests. */
import type { LogFields, Logger } from '../../../../src/core/logger.js';
import type {
  CheckDefinition,
  CheckKind,
  CheckState,
  CheckStatus,
  Instance,
} from '../../../../src/core/types.js';
import type {
  CheckProbe,
  HealthHost,
  HealthObserver,
  ProbeResult,
} from '../../../../src/registry/health/health-types.js';

/** A fully defaulted check definition; `overrides` win. */
export function checkDef(overrides: Partial<CheckDefinition> = {}): CheckDefinition {
  const kind = overrides.kind ?? 'http';
  return {
    id: 'c1',
    name: 'check one',
    kind,
    role: 'readiness',
    ...(kind === 'http'
      ? {
          http: {
            url: 'http://127.0.0.1:1/health',
            method: 'GET',
            headers: {},
            tlsSkipVerify: false,
          },
        }
      : {}),
    ...(kind === 'tcp' ? { tcp: { address: '127.0.0.1:1' } } : {}),
    ...(kind === 'ttl' ? { ttlMs: 10_000 } : {}),
    intervalMs: 1000,
    timeoutMs: 500,
    successesBeforePassing: 1,
    failuresBeforeWarning: 1,
    failuresBeforeCritical: 1,
    startPeriodMs: 0,
    deregisterCriticalAfterMs: 0,
    initialStatus: 'critical',
    ...overrides,
  };
}

/** An instance with the given checks; `overrides` win. */
export function instance(
  checks: readonly CheckDefinition[],
  overrides: Partial<Instance> = {},
): Instance {
  return {
    id: 'web-1',
    service: 'web',
    address: '127.0.0.1',
    port: 8080,
    ports: {},
    tags: [],
    meta: {},
    weights: { passing: 1, warning: 1 },
    priority: 0,
    capacity: 0,
    protocols: ['http'],
    source: 'self',
    managedBy: '',
    checks,
    maintenance: { enabled: false, reason: '' },
    createdAt: Date.UTC(2026, 0, 1),
    updatedAt: Date.UTC(2026, 0, 1),
    ...overrides,
  };
}

/** A persisted check state; `overrides` win. */
export function checkState(overrides: Partial<CheckState> = {}): CheckState {
  return {
    instanceId: 'web-1',
    checkId: 'c1',
    status: 'passing',
    output: '',
    since: Date.UTC(2025, 11, 31),
    startedOnce: false,
    ...overrides,
  };
}

/** A probe whose next result the test sets; `hold()` makes probes wait until `release()`. */
export class FakeProbe implements CheckProbe {
  readonly kind: CheckKind;
  result: ProbeResult = { status: 'passing', output: 'ok' };
  calls = 0;
  readonly signals: AbortSignal[] = [];
  #held: ((r: ProbeResult) => void)[] | undefined;

  constructor(kind: CheckKind = 'http') {
    this.kind = kind;
  }

  probe(_def: CheckDefinition, signal: AbortSignal): Promise<ProbeResult> {
    this.calls += 1;
    this.signals.push(signal);
    if (this.#held !== undefined) {
      const held = this.#held;
      return new Promise((resolve) => held.push(resolve));
    }
    return Promise.resolve(this.result);
  }

  hold(): void {
    this.#held = [];
  }

  /** Resolves held probes with the current result and stops holding. */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const resolve of held) resolve(this.result);
  }

  set(status: CheckStatus, output: string = status): void {
    this.result = { status, output };
  }
}

/** A host that records writes and deregistrations; `failWrites` makes writes reject. */
export class FakeHost implements HealthHost {
  readonly writes: (readonly CheckState[])[] = [];
  readonly deregistrations: { instanceId: string; reason: string }[] = [];
  failWrites = false;

  writeStates(states: readonly CheckState[]): Promise<void> {
    this.writes.push(states);
    return this.failWrites ? Promise.reject(new Error('store unavailable')) : Promise.resolve();
  }

  deregister(instanceId: string, reason: string): Promise<void> {
    this.deregistrations.push({ instanceId, reason });
    return Promise.resolve();
  }

  /** Every written state, flattened. */
  get written(): CheckState[] {
    return this.writes.flat();
  }
}

/** Records observer calls. */
export class FakeObserver implements HealthObserver {
  readonly runs: { kind: CheckKind; status: CheckStatus; durationMs: number }[] = [];
  readonly stalls: number[] = [];
  checkRun(kind: CheckKind, status: CheckStatus, durationMs: number): void {
    this.runs.push({ kind, status, durationMs });
  }
  stall(stalledMs: number): void {
    this.stalls.push(stalledMs);
  }
}

/** A logger that records entries. */
export class RecordingLogger implements Logger {
  readonly entries: { level: string; msg: string; fields: LogFields }[];
  constructor(entries: { level: string; msg: string; fields: LogFields }[] = []) {
    this.entries = entries;
  }
  error(fields: LogFields, msg: string): void {
    this.entries.push({ level: 'error', msg, fields });
  }
  warn(fields: LogFields, msg: string): void {
    this.entries.push({ level: 'warn', msg, fields });
  }
  info(fields: LogFields, msg: string): void {
    this.entries.push({ level: 'info', msg, fields });
  }
  debug(fields: LogFields, msg: string): void {
    this.entries.push({ level: 'debug', msg, fields });
  }
  child(): Logger {
    return new RecordingLogger(this.entries);
  }
  warnings(): string[] {
    return this.entries.filter((e) => e.level === 'warn').map((e) => e.msg);
  }
}
