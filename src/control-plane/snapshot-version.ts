/**
 * @module The version of a snapshot: a hash of its content in canonical JSON (keys sorted), so
 * the same content always has the same version and a recompile that changes nothing pushes
 * nothing.
 */
import { createHash } from 'node:crypto';
import type { MeshSnapshot } from '../protocol/mesh/snapshot.js';

/** The canonical JSON of frozen values, by identity (endpoints are shared by many compiles). */
const frozenJson = new WeakMap<object, string>();

/**
 * JSON with object keys sorted at every level and `undefined` members left out. A frozen object
 * or array is taken as deeply immutable: its text is computed once and reused, which is what
 * makes hashing a gateway's 10,000 endpoints after each change cheap (they are frozen, shared by
 * every compile until their service changes; see instanceEndpoints).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const frozen = Object.isFrozen(value);
  if (frozen) {
    const hit = frozenJson.get(value);
    if (hit !== undefined) return hit;
  }
  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const v: unknown = value[i];
      out += v === undefined ? 'null' : canonicalJson(v);
    }
    out += ']';
  } else {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    out = '{';
    for (const key of keys) {
      const v = record[key];
      if (v === undefined) continue;
      if (out.length > 1) out += ',';
      out += `${JSON.stringify(key)}:${canonicalJson(v)}`;
    }
    out += '}';
  }
  if (frozen) frozenJson.set(value, out);
  return out;
}

/** What a version covers: everything but `version`, `index` and `proxy`. */
export type SnapshotContent = Omit<MeshSnapshot, 'version' | 'index' | 'proxy'>;

const digests = new WeakMap<object, string>();

/** sha256 (base64) of an element's canonical JSON; kept by identity when it is frozen. */
function digest(element: object): string {
  const hit = digests.get(element);
  if (hit !== undefined) return hit;
  const d = createHash('sha256').update(canonicalJson(element)).digest('base64');
  if (Object.isFrozen(element)) digests.set(element, d);
  return d;
}

/**
 * The version of `content`: 16 hex digits of a sha256 over the canonical JSON of everything but
 * the routes and clusters, then the sha256 of each route and each cluster in order. Two levels
 * rather than one hash of the whole text, so that a recompile hashes only the routes and
 * clusters it built anew (frozen ones keep their digest): a gateway with 10,000 endpoints
 * otherwise rehashes 1.7 MB on every change. Still a function of the content alone: the same
 * content always has the same version.
 */
export function snapshotVersion(content: SnapshotContent): string {
  const { routes, clusters, ...rest } = content;
  let text = canonicalJson(rest);
  text += `\nroutes ${routes.length}`;
  for (const r of routes) text += `\n${digest(r)}`;
  text += `\nclusters ${clusters.length}`;
  for (const c of clusters) text += `\n${digest(c)}`;
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
