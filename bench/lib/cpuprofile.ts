/**
 * @module Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by area
 * (meshwork src, fastify, undici, sqlite, zod, node internals, GC, idle).
 * CLI: node --import tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { table } from './report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly byArea: { area: string; ms: number; share: number }[];
  readonly byFunction: { fn: string; where: string; ms: number; share: number }[];
}

/** Which part of the stack a frame belongs to. */
function area(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'program (native, outside JS)';
  if (url.includes('/dist/') && !url.includes('node_modules')) {
    const m = /\/dist\/([^/]+)\//.exec(url);
    return `meshwork ${m?.[1] ?? ''}`.trim();
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg !== undefined) return pkg;
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return 'native / builtins';
  return 'other';
}

/**
 * The current time on the profile's clock, in µs: V8 stamps samples with CLOCK_MONOTONIC, which
 * is machine-wide on Linux, so a benchmark can mark a window in the agent's profile.
 */
export function monoMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Self time per function and per area; with `windows` ([fromUs, toUs] on {@link monoMicros}),
 * only the samples taken inside them.
 */
export function summarizeProfile(
  file: string,
  top = 25,
  windows?: readonly (readonly [number, number])[],
): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (windows !== undefined && !windows.some(([a, b]) => t >= a && t <= b)) continue;
    const id = p.samples[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, { where: string; us: number }>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (n === undefined) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName === '' ? '(anonymous)' : functionName;
    const a = area(url, fn);
    total += us;
    areas.set(a, (areas.get(a) ?? 0) + us);
    const where =
      url === '' ? '' : `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}`;
    const key = `${fn} ${where}`;
    const prev = fns.get(key);
    fns.set(key, { where, us: (prev?.us ?? 0) + us });
  }
  const share = (us: number): number => us / total;
  return {
    totalMs: total / 1000,
    byArea: [...areas]
      .sort((a, b) => b[1] - a[1])
      .map(([a, us]) => ({ area: a, ms: us / 1000, share: share(us) })),
    byFunction: [...fns]
      .sort((a, b) => b[1].us - a[1].us)
      .slice(0, top)
      .map(([key, v]) => ({
        fn: key.slice(0, key.length - v.where.length).trim(),
        where: v.where,
        ms: v.us / 1000,
        share: share(v.us),
      })),
  };
}

/** Markdown tables of a summary, excluding idle from the shares of busy time. */
export function profileTables(s: ProfileSummary): string {
  const idle = s.byArea.find((a) => a.area === 'idle')?.ms ?? 0;
  const busy = s.totalMs - idle;
  const pct = (ms: number): string => `${((ms / busy) * 100).toFixed(1)}%`;
  const areas = table(
    ['area', 'self ms', 'of busy'],
    s.byArea.filter((a) => a.area !== 'idle').map((a) => [a.area, Math.round(a.ms), pct(a.ms)]),
  );
  const fns = table(
    ['function', 'where', 'self ms', 'of busy'],
    s.byFunction
      .filter((f) => f.fn !== '(idle)')
      .map((f) => [f.fn, f.where, Math.round(f.ms), pct(f.ms)]),
  );
  return `profile: ${Math.round(s.totalMs)} ms sampled, ${Math.round(idle)} ms idle\n\n${areas}\n\n${fns}`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) {
    console.error('usage: node --import tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(profileTables(summarizeProfile(file, Number(process.argv[3] ?? 25))));
}
