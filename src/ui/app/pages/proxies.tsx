/**
 * @module Each proxy's sync status (SYNCED / STALE / NACKED with the proxy's error) and the
 * health of its clusters (panic mode, ejected instances), live: a blocking read of
 * `GET /api/v1/mesh/proxies` (it wakes when a proxy connects, is sent a snapshot, ACKs or NACKs,
 * or reports a change of its clusters' health).
 */
import { useBlocking } from '../api.js';
import { ProxyHealthCell } from '../health.js';
import { Notice, StatusBadge } from '../parts.js';
import type { ProxyStatusList } from '../types.js';

const short = (version: string | undefined): string => (version ?? '—').slice(0, 12);

export function ProxiesPage() {
  // 30 s: in cluster mode only this agent's proxies wake the read (docs/api.md).
  const { data: list, error } = useBlocking<ProxyStatusList>('/api/v1/mesh/proxies', '30s');
  return (
    <section>
      <div class="toolbar">
        <h1>Proxies</h1>
        <span class="muted">gateways and sidecars on the push stream</span>
      </div>
      <Notice error={error} />
      {list === undefined ? (
        <Notice>Loading proxies…</Notice>
      ) : (
        <>
          {list.unreachable.map((u) => (
            <p class="error">
              Agent {u.agent} ({u.url}) did not answer: {u.error}
            </p>
          ))}
          {list.proxies.length === 0 ? (
            <p class="empty">No proxy is connected.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>Proxy</th>
                  <th>Kind</th>
                  <th>Name</th>
                  <th>Agent</th>
                  <th>State</th>
                  <th>Sent</th>
                  <th>Runs (ACKed)</th>
                  <th>Error</th>
                  <th>Clusters (panic, ejected)</th>
                </tr>
              </thead>
              <tbody>
                {list.proxies.map((p) => (
                  <tr
                    data-proxy={p.id}
                    data-state={p.state}
                    data-panic={p.health?.some((c) => c.panic) === true ? 'true' : undefined}
                  >
                    <td>{p.id}</td>
                    <td>{p.kind}</td>
                    <td>
                      {p.namespace}/{p.name}
                    </td>
                    <td>{p.agent}</td>
                    <td>
                      <StatusBadge status={p.state} />
                    </td>
                    <td>
                      <code>{short(p.sent)}</code>
                    </td>
                    <td>
                      <code>{short(p.acked)}</code>
                    </td>
                    <td class="error">{p.error ?? ''}</td>
                    <td class="health">
                      <ProxyHealthCell health={p.health} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
