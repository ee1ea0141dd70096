/**
 * @module The catalog as the dashboard sees it: one `GET /api/v1/watch` stream (server-sent
 * events) per open page, a snapshot then upserts and deletes, shared by every view.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, messageOf, probe } from './api.js';
import { token } from './token.js';
import type { WatchEvent, WireInstance } from './types.js';

/** How long to wait before opening a refused stream again (not for a 403). */
const RETRY_MS = 2000;
/** The stream's `?interval=`: changes that come within it of the last write are sent together. */
const STREAM_INTERVAL = '250ms';

export interface CatalogState {
  /** By instance id; undefined until the first snapshot. */
  readonly instances: ReadonlyMap<string, WireInstance> | undefined;
  readonly index: number;
  /** Why the stream is down (it reconnects by itself), or undefined while it runs. */
  readonly error: string | undefined;
}

/**
 * Follows the catalog stream. EventSource cannot send headers, so the token goes as `?token=`
 * (docs/api.md, Tokens). A stream the agent refuses (403) closes for good: one plain read then
 * gets the refusal's message, which opens the token dialog.
 */
export function useCatalog(): CatalogState {
  const [state, setState] = useState<CatalogState>({
    instances: undefined,
    index: 0,
    error: undefined,
  });
  // Bumped to open the stream again after the agent refused it for a reason other than 403.
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    let ended = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    const t = token();
    // At most 4 writes a second per open dashboard however fast the catalog changes (a lone
    // change still comes at once): docs/ui.md, "What the dashboard costs the agent".
    const source = new EventSource(
      `/api/v1/watch?interval=${STREAM_INTERVAL}${t === '' ? '' : `&token=${encodeURIComponent(t)}`}`,
    );
    let instances = new Map<string, WireInstance>();
    const apply = (raw: MessageEvent<string>): void => {
      const event = JSON.parse(raw.data) as WatchEvent;
      if (event.type === 'snapshot') {
        instances = new Map(event.instances.map((i) => [i.id, i]));
      } else if (event.type === 'upsert') {
        instances = new Map(instances).set(event.instance.id, event.instance);
      } else if (event.type === 'delete') {
        instances = new Map(instances);
        instances.delete(event.id);
      } else {
        return; // reset: the stream closes and EventSource reconnects for a new snapshot.
      }
      setState({ instances, index: event.index, error: undefined });
    };
    for (const type of ['snapshot', 'upsert', 'delete', 'reset']) {
      source.addEventListener(type, apply as EventListener);
    }
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setState((s) => ({ ...s, error: 'the catalog stream was refused' }));
        // The refusal's text (and the token dialog) come with a plain request. A 403 waits
        // for a token (which remounts this); anything else (a 503 while the agent restarts)
        // opens the stream again shortly.
        probe('/api/v1/watch').then(
          () => {
            if (!ended) setAttempt((a) => a + 1);
          },
          (err: unknown) => {
            if (ended) return;
            setState((s) => ({ ...s, error: messageOf(err) }));
            if (!(err instanceof ApiError && err.status === 403))
              retry = setTimeout(() => setAttempt((a) => a + 1), RETRY_MS);
          },
        );
      } else {
        setState((s) => ({ ...s, error: 'reconnecting to the agent…' }));
      }
    };
    return () => {
      ended = true;
      clearTimeout(retry);
      source.close();
    };
  }, [attempt]);
  return state;
}

/** The status counts of one service's instances. */
export type StatusCounts = Record<WireInstance['status'], number>;

export interface ServiceSummary {
  readonly name: string;
  readonly instances: number;
  readonly counts: StatusCounts;
  readonly tags: readonly string[];
}

/** The services of a catalog, sorted by name. */
export function summarize(instances: Iterable<WireInstance>): ServiceSummary[] {
  const byName = new Map<string, { counts: StatusCounts; tags: Set<string>; n: number }>();
  for (const i of instances) {
    let s = byName.get(i.service);
    if (s === undefined) {
      s = {
        counts: { passing: 0, warning: 0, critical: 0, maintenance: 0, starting: 0 },
        tags: new Set(),
        n: 0,
      };
      byName.set(i.service, s);
    }
    s.n += 1;
    s.counts[i.status] += 1;
    for (const t of i.tags) s.tags.add(t);
  }
  return [...byName.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, s]) => ({ name, instances: s.n, counts: s.counts, tags: [...s.tags].sort() }));
}
