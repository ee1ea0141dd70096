/**
 * @module The version of a snapshot: a hash of its content in canonical JSON (keys sorted), so
 * the same content always has the same version and a recompile that changes nothing pushes
 * nothing.
 */
import { createHash } from 'node:crypto';
import type { MeshSnapshot } from '../protocol/mesh/snapshot.js';

/** JSON with object keys sorted at every level and `undefined` members left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  }
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort()) {
    const v = record[key];
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** What a version covers: everything but `version`, `index` and `proxy`. */
export type SnapshotContent = Omit<MeshSnapshot, 'version' | 'index' | 'proxy'>;

/** sha256 of the canonical JSON of `content`, first 16 hex digits (64 bits: collisions are not a concern at a mesh's scale). */
export function snapshotVersion(content: SnapshotContent): string {
  return createHash('sha256').update(canonicalJson(content)).digest('hex').slice(0, 16);
}
