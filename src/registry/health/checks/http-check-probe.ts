/** @module HttpCheckProbe: the `http` check kind, over undici with shared keep-alive agents. */
import { STATUS_CODES } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { Agent, request } from 'undici';
import { systemClock, type Clock } from '../../../core/clock.js';
import type { CheckDefinition } from '../../../core/types.js';
import type { CheckProbe, ProbeResult } from '../health-types.js';
import { describeError, startProbeDeadline } from './probe-deadline.js';

/** At most this many bytes of a response body go into a check's output. */
export const HTTP_CHECK_MAX_OUTPUT_BYTES = 4096;

/**
 * Past the output cap, up to this many more body bytes are read and discarded so the keep-alive
 * connection can be reused; a longer body closes the connection instead.
 */
export const HTTP_CHECK_MAX_DISCARD_BYTES = 64 * 1024;

export interface HttpCheckProbeOptions {
  /** Drives the overall probe deadline. Default: the system clock. */
  readonly clock?: Clock;
  /**
   * Sent as `x-meshwork-agent`, so a target (and its logs) can tell which agent checks it; in
   * cluster mode that is the agent that owns the check.
   */
  readonly agentName?: string;
}

const DEFAULT_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'user-agent': 'meshwork-health-check',
  accept: 'text/plain, text/*, */*',
});

/**
 * Runs `http` checks: 2xx is passing, 429 (back off, but alive) warning, anything else, a timeout
 * or a connection error critical. The output names the request and status, followed by up to
 * {@link HTTP_CHECK_MAX_OUTPUT_BYTES} of the body.
 *
 * Connections are kept alive in agents shared by every check with the same timeout and TLS
 * settings (undici sets the connect timeout per agent, not per request). Call `close()` on
 * shutdown; agents are created again on demand afterwards.
 */
export class HttpCheckProbe implements CheckProbe {
  readonly kind = 'http' as const;
  readonly #clock: Clock;
  readonly #agents = new Map<string, Agent>();
  readonly #headers: Readonly<Record<string, string>>;

  constructor(options: HttpCheckProbeOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#headers =
      options.agentName === undefined
        ? DEFAULT_HEADERS
        : Object.freeze({ ...DEFAULT_HEADERS, 'x-meshwork-agent': options.agentName });
  }

  async probe(def: CheckDefinition, signal: AbortSignal): Promise<ProbeResult> {
    const target = def.http;
    if (target === undefined)
      return { status: 'critical', output: `check "${def.id}" has no http target` };
    const method = target.method.toUpperCase();
    const label = `HTTP ${method} ${redactUrl(target.url)}`;
    const deadline = startProbeDeadline(this.#clock, def.timeoutMs, signal);
    try {
      const res = await request(target.url, {
        method: method as 'GET',
        headers: { ...this.#headers, ...lowerCaseKeys(target.headers) },
        dispatcher: this.#agent(def.timeoutMs, target.tlsSkipVerify),
        signal: deadline.signal,
        headersTimeout: def.timeoutMs,
        bodyTimeout: def.timeoutMs,
      });
      const status =
        res.statusCode >= 200 && res.statusCode < 300
          ? 'passing'
          : res.statusCode === 429
            ? 'warning'
            : 'critical';
      const head = `${label}: ${res.statusCode} ${STATUS_CODES[res.statusCode] ?? ''}`.trimEnd();
      // The verdict is the status code; a body that fails midway only shortens the output.
      const body = await readCapped(res.body).catch(() => ({ text: '', truncated: true }));
      const text = body.text.trim();
      const output =
        text === '' ? head : `${head} Output: ${text}${body.truncated ? ' (truncated)' : ''}`;
      return { status, output };
    } catch (err) {
      return {
        status: 'critical',
        output: `${label}: ${failureReason(err, deadline, def, signal)}`,
      };
    } finally {
      deadline.dispose();
    }
  }

  /** Closes the pooled connections. */
  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    await Promise.all(agents.map((a) => a.close()));
  }

  #agent(timeoutMs: number, tlsSkipVerify: boolean): Agent {
    const key = `${timeoutMs}|${tlsSkipVerify}`;
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      agent = new Agent({
        connect: { timeout: timeoutMs, rejectUnauthorized: !tlsSkipVerify },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      this.#agents.set(key, agent);
    }
    return agent;
  }
}

/** Creates an {@link HttpCheckProbe}. */
export function createHttpCheckProbe(options: HttpCheckProbeOptions = {}): HttpCheckProbe {
  return new HttpCheckProbe(options);
}

async function readCapped(body: Readable): Promise<{ text: string; truncated: boolean }> {
  // StringDecoder holds back a UTF-8 sequence cut by the cap instead of emitting U+FFFD.
  const decoder = new StringDecoder('utf8');
  let text = '';
  let kept = 0;
  let received = 0;
  let truncated = false;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (kept < HTTP_CHECK_MAX_OUTPUT_BYTES) {
      const part = chunk.subarray(0, HTTP_CHECK_MAX_OUTPUT_BYTES - kept);
      kept += part.length;
      text += decoder.write(part);
      if (part.length < chunk.length) truncated = true;
    } else {
      truncated = true;
    }
    // Leaving the loop destroys the body, and with it the connection.
    if (received > HTTP_CHECK_MAX_OUTPUT_BYTES + HTTP_CHECK_MAX_DISCARD_BYTES) break;
  }
  return { text, truncated };
}

function failureReason(
  err: unknown,
  deadline: { timedOut(): boolean },
  def: CheckDefinition,
  signal: AbortSignal,
): string {
  if (deadline.timedOut()) return `timed out after ${def.timeoutMs} ms`;
  if (signal.aborted) return 'aborted';
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return `connect timed out after ${def.timeoutMs} ms`;
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return `timed out after ${def.timeoutMs} ms`;
  return describeError(err);
}

function lowerCaseKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

/** Drops credentials from a URL before it goes into an output readers can see. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return url;
  }
}
