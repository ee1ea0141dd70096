/**
 * @module Test helper: an open-loop HTTP load generator. It sends at a fixed rate on schedule,
 * whether or not earlier requests were answered (a closed loop slows down with the system under
 * test and hides its stalls: coordinated omission), and records each request's timing, status
 * and body.
 */
import { Pool } from 'undici';

/** Something to do once, part-way through the load (a kill), on the generator's clock. */
export interface OpenLoopAction {
  /** Ms after the start of the load. */
  readonly afterMs: number;
  readonly run: () => void;
}

export interface OpenLoopOptions {
  /** The origin requests go to (`http://127.0.0.1:PORT`). */
  readonly origin: string;
  readonly ratePerSecond: number;
  readonly durationMs: number;
  /** The path of request `i` (default `/load/<i>`). */
  readonly path?: (i: number) => string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A request not answered (head and body) within this long is recorded as failed. */
  readonly timeoutMs?: number;
  readonly actions?: readonly OpenLoopAction[];
}

/** One request; times are ms since the start of the load (performance.now based). */
export interface OpenLoopRecord {
  readonly index: number;
  /** When the schedule said it was due (index / rate). */
  readonly dueMs: number;
  /** When it was handed to the client (at or just after dueMs while the generator keeps up). */
  readonly sentMs: number;
  /** When its answer ended or it failed. */
  endMs: number;
  /** The status, or 0 when no answer came (then `error` says why). */
  status: number;
  body: string;
  error: string | undefined;
}

export interface OpenLoopResult {
  /** performance.now() at the start of the load: every time below is ms after it. */
  readonly startMs: number;
  readonly records: readonly OpenLoopRecord[];
  /** When each action ran, ms since the start, in the order given. */
  readonly actionsAtMs: readonly number[];
  /** The largest lag of a send behind its due time (how well the generator kept its schedule). */
  readonly maxSendLagMs: number;
}

/**
 * Sends `ratePerSecond * durationMs / 1000` GETs to `origin` on a fixed schedule (request i due
 * at i / rate), over keep-alive connections opened as needed (no request waits for a free
 * one), runs `actions` at their times, and resolves once every request has ended.
 * @example
 * const { records } = await openLoop({ origin, ratePerSecond: 1000, durationMs: 5000 });
 */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const { origin, ratePerSecond, durationMs } = options;
  const total = Math.floor((ratePerSecond * durationMs) / 1000);
  const path = options.path ?? ((i: number) => `/load/${i}`);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const headers = options.headers ?? {};
  // connections: null = no cap: a new keep-alive connection whenever every open one is busy.
  const pool = new Pool(origin, { connections: null, pipelining: 1 });
  const records: OpenLoopRecord[] = [];
  const pending: Promise<void>[] = [];
  const actions = [...(options.actions ?? [])];
  const actionsAtMs: number[] = actions.map(() => Number.NaN);
  let maxSendLagMs = 0;
  const start = performance.now();
  const now = (): number => performance.now() - start;

  const send = (index: number): void => {
    const sentMs = now();
    const dueMs = (index * 1000) / ratePerSecond;
    maxSendLagMs = Math.max(maxSendLagMs, sentMs - dueMs);
    const record: OpenLoopRecord = {
      index,
      dueMs,
      sentMs,
      endMs: Number.NaN,
      status: 0,
      body: '',
      error: undefined,
    };
    records.push(record);
    pending.push(
      pool
        .request({
          path: path(index),
          method: 'GET',
          headers,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        })
        .then(async (res) => {
          record.body = await res.body.text();
          record.status = res.statusCode;
        })
        .catch((err: unknown) => {
          record.status = 0;
          record.error = String((err as { code?: string }).code ?? err);
        })
        .finally(() => {
          record.endMs = now();
        }),
    );
  };

  await new Promise<void>((resolve) => {
    let next = 0;
    const tick = (): void => {
      const elapsed = now();
      actions.forEach((a, i) => {
        if (Number.isNaN(actionsAtMs[i]) && elapsed >= a.afterMs) {
          actionsAtMs[i] = elapsed;
          a.run();
        }
      });
      // Every request due by now goes out, late ones included (the schedule never slides).
      const due = Math.min(total, Math.floor((elapsed * ratePerSecond) / 1000) + 1);
      while (next < due) send(next++);
      if (next >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(pending);
  await pool.close();
  return { startMs: start, records, actionsAtMs, maxSendLagMs };
}
