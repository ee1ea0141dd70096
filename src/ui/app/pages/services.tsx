/** @module The services page: every service with its health counts, searchable, live. */
import { useState } from 'preact/hooks';
import { summarize, type CatalogState } from '../catalog.js';
import { Notice, TextInput } from '../parts.js';

const STATUSES = ['passing', 'warning', 'critical', 'maintenance', 'starting'] as const;

export function ServicesPage({ catalog, query }: { catalog: CatalogState; query: string }) {
  const [q, setQ] = useState(query);
  if (catalog.instances === undefined)
    return <Notice error={catalog.error}>Loading the catalog…</Notice>;
  const needle = q.trim().toLowerCase();
  const services = summarize(catalog.instances.values()).filter(
    (s) =>
      needle === '' ||
      s.name.includes(needle) ||
      s.tags.some((t) => t.toLowerCase().includes(needle)),
  );
  return (
    <section>
      <div class="toolbar">
        <h1>Services</h1>
        <TextInput
          name="search"
          type="search"
          placeholder="Search by name or tag"
          value={q}
          onValue={setQ}
        />
        <span class="muted">index {catalog.index}</span>
      </div>
      <Notice error={catalog.error} />
      {services.length === 0 ? (
        <p class="empty">{needle === '' ? 'No services registered.' : 'No service matches.'}</p>
      ) : (
        <table class="services">
          <thead>
            <tr>
              <th>Service</th>
              <th>Instances</th>
              {STATUSES.map((s) => (
                <th>{s}</th>
              ))}
              <th>Tags</th>
            </tr>
          </thead>
          <tbody>
            {services.map((s) => (
              <tr data-service={s.name} class={s.counts.critical > 0 ? 'has-critical' : ''}>
                <td>
                  <a href={`#/services/${encodeURIComponent(s.name)}`}>{s.name}</a>
                </td>
                <td>{s.instances}</td>
                {STATUSES.map((st) => (
                  <td
                    class={s.counts[st] > 0 ? `count status-${st}` : 'count zero'}
                    data-count={st}
                  >
                    {s.counts[st]}
                  </td>
                ))}
                <td class="tags">{s.tags.join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
