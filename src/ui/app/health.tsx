/**
 * @module The proxies' cluster health on the dashboard (`health` of `GET /api/v1/mesh/proxies`):
 * what a proxy row shows (panic, ejected instances), and who ejected which instance of a service
 * and which proxies are in panic for it, for the service's page.
 */
import type { ClusterHealth, ProxyStatus } from './types.js';

/** One proxy's view of one cluster. */
export interface ProxyClusterHealth {
  readonly proxy: ProxyStatus;
  readonly health: ClusterHealth;
}

/** A proxy as a person names it: `sidecar orders (orders-1)`. */
export const proxyLabel = (p: ProxyStatus): string => `${p.kind} ${p.name} (${p.id})`;

/** Per instance id of `service`: the proxies that ejected it (and from which cluster). */
export function ejectionsOf(
  proxies: readonly ProxyStatus[],
  service: string,
): Map<string, ProxyClusterHealth[]> {
  const out = new Map<string, ProxyClusterHealth[]>();
  for (const proxy of proxies) {
    for (const health of proxy.health ?? []) {
      if (health.service !== service) continue;
      for (const e of health.ejected) {
        let list = out.get(e.id);
        if (list === undefined) out.set(e.id, (list = []));
        list.push({ proxy, health });
      }
    }
  }
  return out;
}

/** The proxies in panic mode for a cluster of `service`. */
export function panicsOf(proxies: readonly ProxyStatus[], service: string): ProxyClusterHealth[] {
  const out: ProxyClusterHealth[] = [];
  for (const proxy of proxies)
    for (const health of proxy.health ?? [])
      if (health.service === service && health.panic) out.push({ proxy, health });
  return out;
}

/** A proxy row's health cell: each cluster with ejections or in panic. */
export function ProxyHealthCell({ health }: { health: readonly ClusterHealth[] | undefined }) {
  if (health === undefined || health.length === 0) return <span class="muted">—</span>;
  return (
    <>
      {health.map((c) => {
        const unlisted = c.ejectedCount - c.ejected.length;
        return (
          <div class="cluster-health" data-cluster={c.cluster}>
            {c.panic && (
              <span class="badge status-panic" data-panic={c.cluster}>
                panic
              </span>
            )}{' '}
            <strong>{c.cluster}</strong>{' '}
            <span class="muted">
              {c.available}/{c.endpoints} available
            </span>
            {c.ejected.length > 0 && (
              <div>
                ejected:{' '}
                {c.ejected.map((e) => (
                  <code class="ejected" data-ejected={e.id} title={e.id}>
                    {e.address} ({e.id})
                  </code>
                ))}
                {unlisted > 0 && <span class="muted"> and {unlisted} more</span>}
              </div>
            )}
          </div>
        );
      })}
    </>
  );
}
