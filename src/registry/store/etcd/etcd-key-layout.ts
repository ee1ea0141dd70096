/** @module EtcdKeyLayout: where cluster mode keeps each record in etcd, all under one prefix. */
import type { MeshResourceKey } from '../../../protocol/mesh/resource.js';

/**
 * The key space of one catalog in etcd. Under `<prefix>`:
 *
 * - `i/<id>` an instance (JSON);
 * - `c/<id>/<checkId>` a check state (JSON);
 * - `k/<key>` a KV entry (JSON with the value in base64 and the flags);
 * - `t/<id>/<checkId>` a TTL check's deadline: an empty key under a lease of the check's TTL,
 *   which heartbeats keep alive and whose deletion by etcd is the expiry;
 * - `m/<nodeName>` a live agent (JSON), under that agent's membership lease;
 * - `r/<Kind>/<namespace>/<name>` a mesh resource (JSON);
 * - `g/mesh` the mesh generation: rewritten by every commit that changes a mesh resource, and
 *   compared by it, so mesh writes (checked against the whole set) are serialised across agents;
 * - `s/<id>` a session (JSON): rewritten (same value) by every acquire it makes, and compared by
 *   the commit that ends it, so no lock is taken behind an ending session's back;
 * - `e/<id>` a TTL session's deadline: an empty key under a lease of twice its TTL, which renews
 *   keep alive and whose deletion by etcd is the session's lapse.
 *
 * Several catalogs share one etcd under different prefixes. The catalog store watches the whole
 * prefix; membership watches `m/` only.
 */
export class EtcdKeyLayout {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  instance(id: string): string {
    return `${this.prefix}i/${id}`;
  }

  check(id: string, checkId: string): string {
    return `${this.prefix}c/${id}/${checkId}`;
  }

  /** The prefix of every check state of an instance. */
  checks(id: string): string {
    return `${this.prefix}c/${id}/`;
  }

  ttl(id: string, checkId: string): string {
    return `${this.prefix}t/${id}/${checkId}`;
  }

  /** The prefix of every TTL deadline of an instance. */
  ttls(id: string): string {
    return `${this.prefix}t/${id}/`;
  }

  kv(key: string): string {
    return `${this.prefix}k/${key}`;
  }

  meshResource(key: MeshResourceKey): string {
    return `${this.prefix}r/${key}`;
  }

  session(id: string): string {
    return `${this.prefix}s/${id}`;
  }

  sessionDeadline(id: string): string {
    return `${this.prefix}e/${id}`;
  }

  meshGeneration(): string {
    return `${this.prefix}g/mesh`;
  }

  /** The prefix of the agents' membership keys. */
  members(): string {
    return `${this.prefix}m/`;
  }

  /** What follows the prefix in `key` (e.g. `i/web-1`); the caller knows the key is ours. */
  rest(key: Buffer): string {
    return key.toString('utf8').slice(this.prefix.length);
  }
}

/**
 * The byte string after every key that starts with `prefix`: etcd ranges are [key, range_end).
 *
 * @example
 * rangeEnd(Buffer.from('/meshwork/')); // Buffer '/meshwork0'
 */
export function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
