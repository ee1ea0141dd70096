/**
 * @module What the mesh commands print: resource names as kubectl spells them, resources as YAML
 * documents a user can apply again, a unified-style line diff, and problem and warning lines.
 */
import { stringify } from 'yaml';
import {
  MESH_KIND_INFO,
  type MeshKind,
  type MeshResource,
  type StoredMeshResource,
} from '../protocol/mesh/resource.js';
import { table } from './command.js';

/** `virtualservice.networking.istio.io/default/reviews`, from a `Kind/namespace/name` key. */
export function resourceLabel(key: string): string {
  const [kind, ...rest] = key.split('/');
  const info = MESH_KIND_INFO[kind as MeshKind] as { group: string } | undefined;
  if (kind === undefined || info === undefined) return key;
  return [`${kind.toLowerCase()}.${info.group}`, ...rest].join('/');
}

/** A resource as a YAML document (apiVersion, kind, metadata, spec), without the `---`. */
export function resourceYaml(r: MeshResource): string {
  return stringify(
    { apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec },
    { lineWidth: 0 },
  );
}

/** Resources as a multi-document YAML stream, which `meshwork apply -f` takes back unchanged. */
export function resourcesYaml(resources: readonly MeshResource[]): string {
  return resources.map((r) => `---\n${resourceYaml(r)}`).join('');
}

/** The table of `meshwork get`. */
export function resourceTable(resources: readonly StoredMeshResource[]): string {
  return table(
    ['NAME', 'NAMESPACE', 'CREATED-INDEX', 'MODIFIED-INDEX'],
    resources.map((s) => [
      s.resource.metadata.name,
      s.resource.metadata.namespace,
      String(s.createIndex),
      String(s.modifyIndex),
    ]),
  );
}

type Op = readonly [' ' | '-' | '+', string];

/** Above this many cells the LCS table is not built: all old lines out, all new lines in. */
const MAX_LCS_CELLS = 4_000_000;

/** The edit script from `a` to `b` by longest common subsequence, in order. */
function editScript(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > MAX_LCS_CELLS) return [...a.map((l): Op => ['-', l]), ...b.map((l): Op => ['+', l])];
  // lcs[i][j]: the longest common subsequence of a[i..] and b[j..], one flat row-major array.
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] =
        a[i] === b[j]
          ? (lcs[(i + 1) * w + j + 1] as number) + 1
          : Math.max(lcs[(i + 1) * w + j] as number, lcs[i * w + j + 1] as number);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push([' ', a[i] as string]);
      i++;
      j++;
    } else if (
      i < n &&
      (j === m || (lcs[(i + 1) * w + j] as number) >= (lcs[i * w + j + 1] as number))
    ) {
      // Removals first, as diff(1) prints them.
      ops.push(['-', a[i] as string]);
      i++;
    } else {
      ops.push(['+', b[j] as string]);
      j++;
    }
  }
  return ops;
}

const linesOf = (text: string): string[] =>
  text === '' ? [] : text.replace(/\n$/, '').split('\n');

/**
 * A unified-style diff of two texts by line: `--- fromLabel`, `+++ toLabel`, then hunks
 * (`@@ -l,n +l,n @@`) of changed lines (`-`, `+`) with `context` unchanged lines around them.
 * Empty when the texts are equal; `before` undefined diffs from nothing (every line `+`).
 */
export function lineDiff(
  before: string | undefined,
  after: string,
  labels: { from: string; to: string },
  context = 3,
): string {
  if (before === after) return '';
  const ops = editScript(linesOf(before ?? ''), linesOf(after));
  const changed = ops.map((o, k) => (o[0] === ' ' ? -1 : k)).filter((k) => k >= 0);
  if (changed.length === 0) return '';
  // Group changes whose context would touch into one hunk.
  const hunks: [number, number][] = [];
  for (const k of changed) {
    const last = hunks.at(-1);
    if (last !== undefined && k - last[1] <= 2 * context + 1) last[1] = k;
    else hunks.push([k, k]);
  }
  let out = `--- ${before === undefined ? '/dev/null' : labels.from}\n+++ ${labels.to}\n`;
  // Line numbers (from 1) in each text at the start of each op.
  const oldAt: number[] = [];
  const newAt: number[] = [];
  let o = 1;
  let nw = 1;
  for (const op of ops) {
    oldAt.push(o);
    newAt.push(nw);
    if (op[0] !== '+') o++;
    if (op[0] !== '-') nw++;
  }
  for (const [first, last] of hunks) {
    const start = Math.max(0, first - context);
    const end = Math.min(ops.length - 1, last + context);
    const slice = ops.slice(start, end + 1);
    const oldCount = slice.filter((x) => x[0] !== '+').length;
    const newCount = slice.filter((x) => x[0] !== '-').length;
    const oldStart = oldCount === 0 ? (oldAt[start] as number) - 1 : (oldAt[start] as number);
    const newStart = newCount === 0 ? (newAt[start] as number) - 1 : (newAt[start] as number);
    out += `@@ -${oldStart},${oldCount} +${newStart},${newCount} @@\n`;
    for (const [mark, line] of slice) out += `${mark}${line}\n`;
  }
  return out;
}

/** Where a problem or warning is, for a person: `document 3 (VirtualService/default/x)`. */
export function documentPlace(number: number | undefined, resource: string | undefined): string {
  const doc = number === undefined ? undefined : `document ${number}`;
  if (doc === undefined)
    return resource === undefined ? 'stored resources' : `${resource} (stored)`;
  return resource === undefined ? doc : `${doc} (${resource})`;
}

/** `FILE: document 3 (VirtualService/default/x): spec.http[0].route[1].weight: reason`. */
export function problemLine(
  file: string,
  p: { number?: number; resource?: string; path: string; reason: string },
): string {
  const path = p.path === '' ? '' : `${p.path}: `;
  return `${file}: ${documentPlace(p.number, p.resource)}: ${path}${p.reason}`;
}
