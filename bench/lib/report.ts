/**
 * @module Benchmark reports: markdown tables, number formatting, the machine header, and a copy of
 * each report under bench/.results/ (git-ignored).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './proc.js';

/** A markdown table; numbers are right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = rows.map((r) => headers.map((_, i) => cellText(r[i])));
  const numeric = headers.map((_, i) =>
    rows.every((r) => typeof r[i] === 'number' || /^[\d.,x%<>~ +-]+$/.test(cellText(r[i]))),
  );
  const widths = headers.map((h, i) =>
    Math.max(h.length, 3, ...cells.map((r) => r[i]?.length ?? 0)),
  );
  const line = (r: readonly string[]): string =>
    `| ${r.map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (numeric[i] ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(headers), sep, ...cells.map(line)].join('\n');
}

function cellText(v: unknown): string {
  if (typeof v === 'number') return fmt(v);
  return v === undefined || v === null ? '' : String(v);
}

/** Formats a number: thousands separators for big ones, 3 significant digits for small ones. */
export function fmt(n: number, digits?: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'n/a' : String(n);
  if (digits !== undefined) return n.toFixed(digits);
  const a = Math.abs(n);
  if (a >= 1000 || Number.isInteger(n)) return Math.round(n).toLocaleString('en-US');
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a === 0) return '0';
  return n.toPrecision(2);
}

/** `0.93x` style ratio. */
export function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

/** nproc, CPU model, memory, kernel and Node version, for the header of every report. */
export function machine(): {
  nproc: number;
  cpu: string;
  node: string;
  kernel: string;
  memGiB: number;
} {
  let cpu = 'unknown';
  let memGiB = 0;
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
    const kb = /^MemTotal:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
    memGiB = kb === undefined ? 0 : Number(kb) / 1024 / 1024;
  } catch {
    // not Linux
  }
  return { nproc: availableParallelism(), cpu, node: process.version, kernel: release(), memGiB };
}

/** Collects a benchmark's report, prints it, and keeps a copy in bench/.results/. */
export class Report {
  readonly #name: string;
  readonly #parts: string[] = [];
  readonly #started = new Date();

  constructor(name: string, command: string) {
    this.#name = name;
    const m = machine();
    this.#parts.push(
      `## ${name}`,
      '',
      `- date: ${this.#started.toISOString().slice(0, 19)}Z`,
      `- machine: nproc ${m.nproc}, ${m.cpu}, ${m.memGiB.toFixed(0)} GiB, Linux ${m.kernel}, Node ${m.node}`,
      `- command: \`${command}\``,
    );
  }

  /** A line under the header (peer versions, parameters). */
  meta(line: string): void {
    this.#parts.push(`- ${line}`);
  }

  section(title: string, body: string): void {
    this.#parts.push('', `### ${title}`, '', body);
  }

  text(body: string): void {
    this.#parts.push('', body);
  }

  /** Records how busy the machine was before the run (from {@link waitForQuiet}). */
  quiet(busyBefore: number): void {
    this.meta(
      `machine busy before the run: ${(busyBefore * 100).toFixed(0)}% of ${availableParallelism()} cores; load average at the end: ${loadAverage().toFixed(2)}`,
    );
  }

  /** Prints the report and writes bench/.results/<name>-<timestamp>.md; returns its path. */
  finish(): string {
    const text = `${this.#parts.join('\n')}\n`;
    console.log(`\n${text}`);
    const dir = join(REPO_ROOT, 'bench', '.results');
    mkdirSync(dir, { recursive: true });
    const file = join(
      dir,
      `${this.#name}-${this.#started.toISOString().replace(/[:.]/g, '-').slice(0, 19)}.md`,
    );
    writeFileSync(file, text);
    console.log(`(saved to ${file})`);
    return file;
  }
}

/** CPU time counters of the whole machine (all cores), from the first line of /proc/stat. */
function cpuTimes(): { idle: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { idle, total: fields.reduce((a, b) => a + b, 0) };
}

/** Fraction of the machine's CPU (0-1, all cores) in use over the next `ms`. */
export async function machineBusy(ms = 2000): Promise<number> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  const total = b.total - a.total;
  return total <= 0 ? 0 : 1 - (b.idle - a.idle) / total;
}

/**
 * Waits (up to `maxWaitS`) until other work on the machine uses less than `threshold` of it:
 * the machine is shared, and a test suite running beside a benchmark skews it. Returns the busy
 * fraction seen last, to put in the report.
 */
export async function waitForQuiet(maxWaitS = 300, threshold = 0.1): Promise<number> {
  const deadline = Date.now() + maxWaitS * 1000;
  let busy = await machineBusy();
  while (busy > threshold && Date.now() < deadline) {
    log(`machine ${(busy * 100).toFixed(0)}% busy with other work; waiting for it to settle`);
    busy = await machineBusy(5000);
  }
  if (busy > threshold) log(`machine still ${(busy * 100).toFixed(0)}% busy; going ahead`);
  return busy;
}

/** 1-minute load average. */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** Progress output on stderr, so stdout carries only the report. */
export function log(msg: string): void {
  const t = new Date().toISOString().slice(11, 19);
  process.stderr.write(`[${t}] ${msg}\n`);
}

/** Waits for a quiet machine when `quietWaitS` > 0, else just measures how busy it is. */
export function settle(quietWaitS: number): Promise<number> {
  return quietWaitS > 0 ? waitForQuiet(quietWaitS) : machineBusy();
}
