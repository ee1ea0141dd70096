/**
 * @module SelfRegistration: a service registers itself and stays registered. Registration runs
 * in the background with exponential backoff and jitter while no registry answers (the service
 * starts anyway); heartbeats go out at a fraction of the TTL; an instance the registry has
 * forgotten (a restarted dev agent: a 404 on heartbeat) is registered again; the RegistryClient
 * fails over between registry addresses.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { systemClock, type Clock, type TimerHandle } from '../core/clock.js';
import { ERROR_CODES, isMeshError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { CheckStatus } from '../core/types.js';
import { registrationInputSchema, type RegistrationInput } from '../protocol/registration.js';
import { parseOrThrow } from '../protocol/validation.js';
import type { DeleteResponse } from '../protocol/api-types.js';
import type { RegistryClient } from './registry-client.js';

export interface SelfRegistrationOptions {
  readonly registry: RegistryClient;
  /** The instance; `id` defaults to `<service>-<12 hex>`, fixed for this process's life. */
  readonly instance: RegistrationInput;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly logger?: Logger;
  /** Heartbeats every `ttl × heartbeatFraction` (default 1/3: two may be lost). */
  readonly heartbeatFraction?: number;
  /** Registration retry backoff: exponential from `retryBaseMs` to `retryMaxMs`, full jitter. */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /**
   * Status sent with each heartbeat (e.g. from dependency checks), optionally with the output
   * the registry shows for the check. Default passing.
   */
  readonly status?: () => HeartbeatReport | Promise<HeartbeatReport>;
}

/** What one heartbeat reports: a status, or a status and its output. */
export type HeartbeatReport =
  CheckStatus | { readonly status: CheckStatus; readonly output?: string };

export const DEFAULT_SELF_REGISTRATION_OPTIONS = Object.freeze({
  heartbeatFraction: 1 / 3,
  retryBaseMs: 200,
  retryMaxMs: 10_000,
});

/**
 * Events: `registered` (id, index) after every successful registration (first and again);
 * `error` is never emitted (failures are retried and logged); `heartbeat-failed` (error).
 */
export interface SelfRegistrationEvents {
  registered: [id: string, index: number];
  'heartbeat-failed': [error: Error];
}

/** Keeps one instance registered until `deregister()` or `stop()`. */
export class SelfRegistration extends EventEmitter<SelfRegistrationEvents> {
  readonly id: string;
  readonly #registry: RegistryClient;
  readonly #input: RegistrationInput;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #log: Logger;
  readonly #heartbeatMs: number | undefined;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #status: (() => HeartbeatReport | Promise<HeartbeatReport>) | undefined;
  #timer: TimerHandle | undefined;
  /** heartbeatNow() was called while a heartbeat was in flight: send another at once after it. */
  #again = false;
  #beating = false;
  #failures = 0;
  #registered = false;
  #stopped = false;
  #running: Promise<void> | undefined;
  #firstRegistration: { promise: Promise<void>; resolve: () => void };

  constructor(options: SelfRegistrationOptions) {
    super();
    const d = DEFAULT_SELF_REGISTRATION_OPTIONS;
    // Validate here, once: a bad registration is the caller's bug and must fail at start-up.
    const parsed = parseOrThrow(registrationInputSchema, options.instance, 'instance');
    this.id = options.instance.id ?? `${parsed.service}-${randomBytes(6).toString('hex')}`;
    this.#input = { ...options.instance, id: this.id };
    this.#registry = options.registry;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#log = (options.logger ?? silentLogger).child({ component: 'self-registration' });
    this.#baseMs = options.retryBaseMs ?? d.retryBaseMs;
    this.#maxMs = options.retryMaxMs ?? d.retryMaxMs;
    this.#status = options.status;
    const ttls = (parsed.checks ?? [])
      .map((c) => c.ttlMs ?? c.ttl)
      .filter((t): t is number => t !== undefined);
    this.#heartbeatMs =
      ttls.length === 0
        ? undefined
        : Math.max(1, Math.min(...ttls) * (options.heartbeatFraction ?? d.heartbeatFraction));
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#firstRegistration = { promise, resolve };
  }

  /** Whether the registry has acknowledged the instance (and has not said it forgot it since). */
  get registered(): boolean {
    return this.#registered;
  }

  /** Starts registering in the background; returns at once. */
  start(): this {
    if (this.#timer === undefined && this.#running === undefined && !this.#stopped)
      this.#schedule(0, () => this.#register());
    return this;
  }

  /** Resolves once the first registration was acknowledged (it never rejects: it keeps trying). */
  whenRegistered(): Promise<void> {
    return this.#firstRegistration.promise;
  }

  /**
   * Sends the next heartbeat now instead of when it is due (a status change the registry should
   * see at once). Does nothing before the instance is registered or without a TTL check.
   */
  heartbeatNow(): void {
    if (this.#stopped || !this.#registered || this.#heartbeatMs === undefined) return;
    if (this.#beating) {
      this.#again = true;
      return;
    }
    if (this.#timer === undefined) return; // a registration is under way; it heartbeats next
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#schedule(0, () => this.#heartbeat());
  }

  /** Stops heartbeats and re-registration, without deregistering. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /**
   * Stops and removes the instance from the registry. Answers the agent's reply (its `notified`
   * says how many watchers were sent the removal), or undefined if the registry no longer knew
   * the instance.
   */
  async deregister(): Promise<DeleteResponse | undefined> {
    await this.stop();
    try {
      const r = await this.#registry.deregister(this.id, { notify: true });
      this.#registered = false;
      return r;
    } catch (err) {
      if (isMeshError(err, ERROR_CODES.INSTANCE_NOT_FOUND)) return undefined;
      throw err;
    }
  }

  #schedule(ms: number, step: () => Promise<void>): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#running = step().finally(() => (this.#running = undefined));
    }, ms);
    this.#timer.unref?.();
  }

  async #register(): Promise<void> {
    try {
      const r = await this.#registry.register(this.#input);
      if (this.#stopped) return;
      this.#failures = 0;
      this.#registered = true;
      this.#log.info({ id: this.id, index: r.index }, 'registered');
      this.emit('registered', this.id, r.index);
      this.#firstRegistration.resolve();
      if (this.#heartbeatMs !== undefined) this.#schedule(0, () => this.#heartbeat());
    } catch (err) {
      if (this.#stopped) return;
      this.#failures++;
      const ceiling = Math.min(this.#maxMs, this.#baseMs * 2 ** (this.#failures - 1));
      const delayMs = this.#random() * ceiling;
      this.#log.warn(
        { id: this.id, attempt: this.#failures, delayMs: Math.round(delayMs), err: describe(err) },
        'registration failed; retrying',
      );
      this.#schedule(delayMs, () => this.#register());
    }
  }

  async #heartbeat(): Promise<void> {
    const every = this.#heartbeatMs as number;
    this.#beating = true;
    this.#again = false;
    try {
      const report = (await this.#status?.()) ?? 'passing';
      if (typeof report === 'string') await this.#registry.heartbeat(this.id, report);
      else await this.#registry.heartbeat(this.id, report.status, report.output);
    } catch (err) {
      this.#beating = false;
      if (this.#stopped) return;
      this.emit('heartbeat-failed', err as Error);
      if (isMeshError(err, ERROR_CODES.INSTANCE_NOT_FOUND)) {
        // The registry forgot us (restarted without its data, or deregistered after critical).
        this.#registered = false;
        this.#log.warn({ id: this.id }, 'registry forgot the instance; registering again');
        this.#schedule(0, () => this.#register());
        return;
      }
      this.#log.warn({ id: this.id, err: describe(err) }, 'heartbeat failed');
    }
    this.#beating = false;
    this.#schedule(this.#again ? 0 : every, () => this.#heartbeat());
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Creates and starts a {@link SelfRegistration}. */
export function registerSelf(options: SelfRegistrationOptions): SelfRegistration {
  return new SelfRegistration(options).start();
}
