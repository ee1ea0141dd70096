/**
 * @module One service's instances: status, checks with their outputs, tags and metadata, and
 * maintenance on/off (`PUT /api/v1/instances/{id}/maintenance`), live from the catalog stream;
 * and which proxies ejected which instance or are in panic mode for the service, live from a
 * blocking read of `GET /api/v1/mesh/proxies` (quiet: a token that may not read the mesh still
 * sees the instances).
 */
import { useState } from 'preact/hooks';
import { call, messageOf, useBlocking } from '../api.js';
import { ejectionsOf, panicsOf, proxyLabel, type ProxyClusterHealth } from '../health.js';
import type { CatalogState } from '../catalog.js';
import { Notice, StatusBadge, TextInput } from '../parts.js';
import type { ProxyStatusList, WireInstance } from '../types.js';

function MaintenanceToggle({ instance }: { instance: WireInstance }) {
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const on = instance.maintenance.enabled;
  const toggle = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      await call('PUT', `/api/v1/instances/${encodeURIComponent(instance.id)}/maintenance`, {
        body: JSON.stringify({ enabled: !on, reason: on ? '' : reason }),
        contentType: 'application/json',
      });
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="maintenance">
      {on ? (
        <span>
          In maintenance
          {instance.maintenance.reason === '' ? '' : `: ${instance.maintenance.reason}`}
        </span>
      ) : (
        <TextInput name="reason" placeholder="reason" value={reason} onValue={setReason} />
      )}
      <button disabled={busy} onClick={() => void toggle()} data-action="maintenance">
        {on ? 'End maintenance' : 'Start maintenance'}
      </button>
      {error !== undefined && <p class="error">{error}</p>}
    </div>
  );
}

function InstanceCard({
  instance: i,
  ejectedBy,
}: {
  instance: WireInstance;
  ejectedBy: readonly ProxyClusterHealth[];
}) {
  const meta = Object.entries(i.meta);
  return (
    <article
      class={`instance status-border-${i.status}`}
      data-instance={i.id}
      data-status={i.status}
      data-ejected={ejectedBy.length > 0 ? 'true' : undefined}
    >
      <div class="instance-head">
        <StatusBadge status={i.status} />
        <strong>{i.id}</strong>
        <span class="muted">
          {i.address}:{i.port}
        </span>
        {i.statusReason !== '' && <span class="muted">({i.statusReason})</span>}
        {ejectedBy.length > 0 && <span class="badge status-ejected">ejected</span>}
      </div>
      {ejectedBy.map(({ proxy, health }) => (
        <p class="ejected-by" data-ejected-by={proxy.id}>
          Ejected by {proxyLabel(proxy)} from cluster {health.cluster} (outlier detection: it sends
          no traffic there until the ejection ends)
        </p>
      ))}
      <div class="kv-grid">
        <span>source</span>
        <span>
          {i.source}
          {i.managedBy !== '' && ` (set ${i.managedBy})`}
        </span>
        {i.tags.length > 0 && (
          <>
            <span>tags</span>
            <span>{i.tags.join(', ')}</span>
          </>
        )}
        {meta.map(([k, v]) => (
          <>
            <span>meta.{k}</span>
            <span>{v}</span>
          </>
        ))}
      </div>
      {i.checks.length > 0 && (
        <table class="checks">
          <thead>
            <tr>
              <th>Check</th>
              <th>Kind</th>
              <th>Status</th>
              <th>Output</th>
            </tr>
          </thead>
          <tbody>
            {i.checks.map((c) => (
              <tr data-check={c.id}>
                <td>{c.name ?? c.id}</td>
                <td>
                  {c.kind}
                  {c.role === undefined ? '' : ` (${c.role})`}
                </td>
                <td>
                  <StatusBadge status={c.status} />
                </td>
                <td>
                  <code>{c.output}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <MaintenanceToggle instance={i} />
    </article>
  );
}

export function ServicePage({ catalog, name }: { catalog: CatalogState; name: string }) {
  const { data: proxyList, error: proxiesError } = useBlocking<ProxyStatusList>(
    '/api/v1/mesh/proxies',
    '30s',
    true,
  );
  const proxies = proxyList?.proxies ?? [];
  const ejections = ejectionsOf(proxies, name);
  const panics = panicsOf(proxies, name);
  if (catalog.instances === undefined)
    return <Notice error={catalog.error}>Loading the catalog…</Notice>;
  const instances = [...catalog.instances.values()]
    .filter((i) => i.service === name)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return (
    <section>
      <div class="toolbar">
        <h1>
          <a href="#/services">Services</a> / {name}
        </h1>
      </div>
      <Notice error={catalog.error} />
      {proxiesError !== undefined && (
        <p class="muted" data-testid="no-proxy-health">
          Ejections and panic mode not shown: {proxiesError}
        </p>
      )}
      {panics.map(({ proxy, health }) => (
        <p class="panic" data-panic-proxy={proxy.id}>
          <span class="badge status-panic">panic</span> {proxyLabel(proxy)} is in panic mode for
          cluster {health.cluster}: {health.available} of {health.endpoints} instances available, so
          it spreads traffic over all of them
        </p>
      ))}
      {instances.length === 0 ? (
        <p class="empty">No instances of {name}.</p>
      ) : (
        instances.map((i) => (
          <InstanceCard key={i.id} instance={i} ejectedBy={ejections.get(i.id) ?? []} />
        ))
      )}
    </section>
  );
}
