/**
 * @module Referential checks across a set of mesh resources (what one resource alone cannot
 * say): a route to a subset that no DestinationRule of its host defines. Run on the set a write
 * would leave, so nothing dangling is ever stored.
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

/** One problem of a set: the resource it is in (`Kind/namespace/name`) and the field path. */
export interface SetProblem extends ResourceProblem {
  readonly resource: string;
}

/** Problems of the references in `resources` (the whole set as it would be stored). */
export function checkReferences(resources: readonly MeshResource[]): SetProblem[] {
  const subsets = new Map<string, Set<string>>();
  for (const r of resources) {
    if (r.kind !== 'DestinationRule') continue;
    const spec = r.spec as DestinationRuleSpec;
    const host = `${r.metadata.namespace}/${shortHost(spec.host, r.metadata.namespace)}`;
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
    const host = shortHost(d.host, r.metadata.namespace);
    if (subsets.get(`${r.metadata.namespace}/${host}`)?.has(d.subset) === true) return;
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
