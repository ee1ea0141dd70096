/**
 * @module splitOriginalDestination: the part of a snapshot a sidecar passes through to the
 * request's own destination instead of routing. A ServiceEntry with `resolution: NONE` names
 * hosts (often wildcards, `*.example.com`) with no endpoints to balance over: Istio's sidecar
 * forwards such a request to where it was going. The shared route builder cannot make a cluster
 * of that (the gateway refuses it), so the sidecar takes those routes out first and passes their
 * hosts through, whatever the egress mode (the ServiceEntry makes them part of the registry).
 */
import type { MeshSnapshot } from '../protocol/mesh/snapshot.js';
import { compileHosts, type MatchInput } from '../proxy/route-table.js';

export interface OriginalDestinationSplit {
  /** The snapshot without the pass-through routes and their clusters (what the builder runs). */
  readonly routed: MeshSnapshot;
  /** Whether a request's host (normalised) is one to pass through. */
  readonly passThrough: (input: MatchInput) => boolean;
  /** The hosts passed through, for logs. */
  readonly hosts: readonly string[];
}

const NONE_MATCH = (): boolean => false;

/**
 * Splits off the routes whose every backend is a `resolution: NONE` cluster: their hosts are
 * passed through. A route mixing NONE and other backends stays (the builder refuses it, naming
 * the field), as does a NONE cluster a remaining route or mirror still names.
 */
export function splitOriginalDestination(snapshot: MeshSnapshot): OriginalDestinationSplit {
  const none = new Set(
    snapshot.clusters.filter((c) => c.external?.resolution === 'NONE').map((c) => c.name),
  );
  if (none.size === 0) return { routed: snapshot, passThrough: NONE_MATCH, hosts: [] };
  const hosts = new Set<string>();
  const routes = snapshot.routes.filter((r) => {
    const passed = r.backends.length > 0 && r.backends.every((b) => none.has(b.cluster));
    if (passed) for (const h of r.hosts) hosts.add(h);
    return !passed;
  });
  const named = new Set<string>();
  for (const r of routes) {
    for (const b of r.backends) named.add(b.cluster);
    if (r.mirror !== undefined) named.add(r.mirror.cluster);
  }
  const clusters = snapshot.clusters.filter((c) => !none.has(c.name) || named.has(c.name));
  const list = [...hosts].sort();
  return {
    routed: { ...snapshot, routes, clusters },
    passThrough: list.length === 0 ? NONE_MATCH : compileHosts(list),
    hosts: list,
  };
}
