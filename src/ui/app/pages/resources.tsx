/**
 * @module The mesh resources (VirtualServices, DestinationRules, policies...) with their YAML,
 * live: a blocking read of `GET /api/v1/mesh/resources`, which wakes on mesh changes only.
 */
import { useState } from 'preact/hooks';
import { useBlocking } from '../api.js';
import { Notice } from '../parts.js';
import type { StoredMeshResource } from '../types.js';
import { toYaml } from '../yaml.js';

export function ResourcesPage() {
  const { data, error } = useBlocking<{ resources: StoredMeshResource[] }>(
    '/api/v1/mesh/resources',
  );
  const resources = data?.resources;
  const [kind, setKind] = useState('');
  const kinds = [...new Set((resources ?? []).map((r) => r.resource.kind))].sort();
  const shown = (resources ?? []).filter((r) => kind === '' || r.resource.kind === kind);
  return (
    <section>
      <div class="toolbar">
        <h1>Mesh resources</h1>
        <select name="kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
          <option value="">every kind</option>
          {kinds.map((k) => (
            <option value={k}>{k}</option>
          ))}
        </select>
        <span class="muted">apply with `meshwork apply -f` or POST /api/v1/mesh/apply</span>
      </div>
      <Notice error={error} />
      {resources === undefined ? (
        <Notice>Loading resources…</Notice>
      ) : shown.length === 0 ? (
        <p class="empty">No mesh resources.</p>
      ) : (
        shown.map(({ resource: r, modifyIndex }) => {
          const id = `${r.kind}/${r.metadata.namespace ?? 'default'}/${r.metadata.name}`;
          return (
            <details class="resource" data-resource={id}>
              <summary>
                <strong>{r.kind}</strong> {r.metadata.namespace ?? 'default'}/{r.metadata.name}{' '}
                <span class="muted">modified at index {modifyIndex}</span>
              </summary>
              <pre>{toYaml(r)}</pre>
            </details>
          );
        })
      )}
    </section>
  );
}
