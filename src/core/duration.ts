/** @module Duration strings ("250ms", "10s", "1m30s", "2h") to milliseconds, as Go and Consul write them. */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;

/**
 * Parses a duration string into whole milliseconds (rounded up, so "1us" is 1 ms rather than 0).
 * A bare number is milliseconds. Returns undefined when `text` is not a duration.
 * @example parseDurationMs('1m30s') // 90000
 */
export function parseDurationMs(text: string): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return safe(Math.ceil(Number(s)));
  let total = 0;
  PART.lastIndex = 0;
  let pos = 0;
  while (pos < s.length) {
    PART.lastIndex = pos;
    const m = PART.exec(s);
    if (m === null) return undefined;
    const unit = UNIT_MS[m[2] as string];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    pos = PART.lastIndex;
  }
  return safe(Math.ceil(total));
}

/** Durations beyond 2^53 ms (285,000 years) are not durations anyone means. */
function safe(ms: number): number | undefined {
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** Formats milliseconds as a short duration string ("1500ms" -> "1.5s"). */
export function formatDurationMs(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
