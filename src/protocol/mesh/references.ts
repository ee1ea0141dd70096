/**
 * @module Referential checks across a set of mesh resources (what one resource alone cannot
 * say): a route or mirror to a subset that no DestinationRule of its host defines. Run on the set
 * a write would leave, so nothing dangling is ever stored.
 */
import { meshResourceKey, type MeshResource, type ResourceProblem } from './resource.js';
import type { DestinationRuleSpec, VirtualServiceSpec } from './specs.js';

/** `payments`, `payments.default`, `payments.default.svc.cluster.local` -> `payments` (same namespace). */
export function shortHost(host: string, namespace: string): string {
  const parts = host.split('.');
  if (parts.length === 1) return host;
  if (parts[1] === namespace && (parts.length === 2 || parts[2] === 'svc'))
    return parts[0] as string;
  return host;
}

/**
 * The catalog service (or external host) `host` names, read in `namespace`: `payments`,
 * `payments.<namespace>` and `payments.<any>.svc[.<domain>]` name `payments` (the catalog is
 * flat); any other host is kept whole. The compiler resolves hosts the same way
 * (control-plane/mesh-hosts.ts), so a reference this check accepts is one it can follow.
 */
export function resolveMeshHost(host: string, namespace: string): string {
  const parts = host.split('.');
  if (parts.length >= 3 && parts[2] === 'svc' && parts[0] !== '*') return parts[0] as string;
  return shortHost(host, namespace);
}

/** One problem of a set: the resource it is in (`Kind/namespace/name`) and the field path. */
export interface SetProblem extends ResourceProblem {
  readonly resource: string;
}

/**
 * Problems of the references in `resources` (the whole set as it would be stored). A subset may
 * be defined by a DestinationRule of its host in any namespace, as the compiler looks them up
 * (the client's namespace first, then the service's, then the root namespace).
 */
export function checkReferences(resources: readonly MeshResource[]): SetProblem[] {
  const subsets = new Map<string, Set<string>>();
  for (const r of resources) {
    if (r.kind !== 'DestinationRule') continue;
    const spec = r.spec as DestinationRuleSpec;
    const host = resolveMeshHost(spec.host, r.metadata.namespace);
    let names = subsets.get(host);
    if (names === undefined) subsets.set(host, (names = new Set()));
    for (const s of spec.subsets ?? []) names.add(s.name);
  }
  const problems: SetProblem[] = [];
  const checkDestination = (
    r: MeshResource,
    path: string,
    d: { host: string; subset?: string },
  ): void => {
    if (d.subset === undefined) return;
    if (subsets.get(resolveMeshHost(d.host, r.metadata.namespace))?.has(d.subset) === true) return;
    problems.push({
      resource: meshResourceKey(r),
      path,
      reason: `subset "${d.subset}" of host "${d.host}" is defined by no DestinationRule`,
    });
  };
  for (const r of resources) {
    if (r.kind !== 'VirtualService') continue;
    const spec = r.spec as VirtualServiceSpec;
    spec.http.forEach((h, i) => {
      h.route.forEach((d, j) =>
        checkDestination(r, `spec.http[${i}].route[${j}].destination.subset`, d.destination),
      );
      if (h.mirror !== undefined) checkDestination(r, `spec.http[${i}].mirror.subset`, h.mirror);
    });
  }
  return problems;
}
