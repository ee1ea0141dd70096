/**
 * @module An open-loop, rate-controlled load driver: operation i is due at start + i/rate whatever
 * happened to earlier ones, and its latency is measured from that due time, so a slow server
 * shows up as latency instead of silently lowering the offered rate (no coordinated omission).
 */

export interface OpenLoopOptions {
  /** Operations per second. */
  readonly rate: number;
  readonly seconds: number;
  /** Operations in flight at most; due operations wait (and their latency grows) beyond it. */
  readonly maxInFlight?: number;
  /** Resolves true on success. */
  readonly op: (i: number) => Promise<boolean>;
}

export interface OpenLoopResult {
  readonly offered: number;
  readonly ok: number;
  readonly errors: number;
  /** From the first due time to the last completion. */
  readonly elapsedMs: number;
  /** Latency from the due time, ms, successful operations only. */
  readonly latencyMs: Float64Array;
  /** Latency from the actual send, ms (hides the driver's own lateness). */
  readonly serviceMs: Float64Array;
  /** Operations sent more than 5 ms after their due time (driver or in-flight cap behind). */
  readonly lateSends: number;
  readonly maxInFlightSeen: number;
  readonly firstError?: string;
}

/** Runs `op` at `rate` per second for `seconds`; resolves when every operation has settled. */
export function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { rate, seconds, op } = options;
  const maxInFlight = options.maxInFlight ?? 4096;
  const total = Math.round(rate * seconds);
  const latency = new Float64Array(total);
  const service = new Float64Array(total);
  let issued = 0;
  let settled = 0;
  let ok = 0;
  let errors = 0;
  let inFlight = 0;
  let maxSeen = 0;
  let lateSends = 0;
  let lastEnd = 0;
  let firstError: string | undefined;
  const periodMs = 1000 / rate;
  const start = performance.now();

  return new Promise((resolve) => {
    const finishIfDone = (): void => {
      if (settled < total || issued < total) return;
      resolve({
        offered: total,
        ok,
        errors,
        elapsedMs: lastEnd - start,
        latencyMs: latency.subarray(0, ok),
        serviceMs: service.subarray(0, ok),
        lateSends,
        maxInFlightSeen: maxSeen,
        ...(firstError === undefined ? {} : { firstError }),
      });
    };
    const issue = (i: number): void => {
      const due = start + i * periodMs;
      const sent = performance.now();
      if (sent - due > 5) lateSends++;
      inFlight++;
      if (inFlight > maxSeen) maxSeen = inFlight;
      const done = (good: boolean, err?: unknown): void => {
        const end = performance.now();
        lastEnd = end;
        inFlight--;
        settled++;
        if (good) {
          latency[ok] = end - due;
          service[ok] = end - sent;
          ok++;
        } else {
          errors++;
          firstError ??= err === undefined ? `operation ${i} failed` : (err as Error).message;
        }
        // A completion may free a slot for an operation that is already due.
        if (issued < total) pump();
        finishIfDone();
      };
      op(i).then(
        (good) => done(good),
        (err: unknown) => done(false, err),
      );
    };
    let timer: NodeJS.Timeout | undefined;
    const pump = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor((now - start) / periodMs) + 1);
      while (issued < due && inFlight < maxInFlight) issue(issued++);
      if (issued < total && timer === undefined) {
        // Timers tick at ~1 ms: at 10k/s this sends bursts of ~10, each measured from its due time.
        const wait = Math.max(0, start + issued * periodMs - performance.now());
        timer = setTimeout(
          () => {
            timer = undefined;
            pump();
          },
          Math.min(wait, 1),
        );
      }
    };
    if (total === 0) finishIfDone();
    else pump();
  });
}
