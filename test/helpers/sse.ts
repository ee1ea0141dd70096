/** @module Test helper: reads a server-sent-events stream into parsed events, waits without sleeping. */
import { request } from 'undici';
import { arrivals } from './arrivals.js';

export interface SseCollector<T> {
  readonly events: T[];
  readonly status: number;
  readonly contentType: string;
  /** Resolves once at least `n` events arrived. */
  until(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function collectSse<T = unknown>(url: string): Promise<SseCollector<T>> {
  const ac = new AbortController();
  const res = await request(url, { signal: ac.signal });
  const events = arrivals<T>();
  let buf = '';
  const reader = (async () => {
    for await (const chunk of res.body) {
      buf += (chunk as Buffer).toString();
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const data = buf
          .slice(0, end)
          .split('\n')
          .find((l) => l.startsWith('data: '));
        buf = buf.slice(end + 2);
        if (data !== undefined) events.push(JSON.parse(data.slice(6)) as T);
      }
    }
  })().catch(() => undefined);
  return {
    events: events.items,
    status: res.statusCode,
    contentType: String(res.headers['content-type']),
    until: events.until,
    close: async () => {
      ac.abort();
      await reader;
    },
  };
}
