/**
 * @module The dashboard's calls to its agent: the token (sessionStorage) on every call, the
 * API's error shape, and blocking queries (`?index=N&wait=`) for live reads without polling.
 */
import { useEffect, useState } from 'preact/hooks';
import { signalTokenNeeded, token } from './token.js';

/** A non-2xx answer of the API: its status and `{error: {code, message}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiAnswer<T> {
  readonly body: T;
  /** X-Meshwork-Index, when the answer has one. */
  readonly index: number | undefined;
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token();
  return t === '' ? extra : { ...extra, 'x-consul-token': t };
}

/**
 * Calls the agent. A 403 on a read means the token (or its absence) may not see this: the token
 * dialog opens with the refusal. A refused write throws, for the page to show the message.
 */
export async function call<T>(
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  init: { body?: string; signal?: AbortSignal; contentType?: string; quiet?: boolean } = {},
): Promise<ApiAnswer<T>> {
  const res = await fetch(path, {
    method,
    headers: headers(init.contentType === undefined ? {} : { 'content-type': init.contentType }),
    ...(init.body === undefined ? {} : { body: init.body }),
    ...(init.signal === undefined ? {} : { signal: init.signal }),
  });
  const text = await res.text();
  if (!res.ok) throw refusal(init.quiet === true ? 'QUIET' : method, res, text);
  const index = res.headers.get('x-meshwork-index');
  return {
    body: (text === '' ? undefined : JSON.parse(text)) as T,
    index: index === null ? undefined : Number(index),
  };
}

/**
 * The ApiError of a non-2xx answer; a refused read (403) opens the token dialog, unless the read
 * was `quiet` (an extra a page can do without: method QUIET).
 */
function refusal(method: string, res: Response, text: string): ApiError {
  let code = `HTTP_${res.status}`;
  let message = text || res.statusText;
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    code = parsed.error?.code ?? code;
    message = parsed.error?.message ?? message;
  } catch {
    // Not the API's JSON shape (a proxy in front of the agent): the text is the message.
  }
  if (res.status === 403 && method === 'GET') signalTokenNeeded(message);
  return new ApiError(res.status, code, message);
}

/**
 * Why a stream (`GET` of `path`) is refused: resolves once it answers 2xx (its body is not
 * read), throws its ApiError otherwise. EventSource hides the status and body of a refusal.
 */
export async function probe(path: string): Promise<void> {
  const ac = new AbortController();
  const res = await fetch(path, { headers: headers(), signal: ac.signal });
  if (res.ok) {
    ac.abort();
    return;
  }
  throw refusal('GET', res, await res.text());
}

/** The message to show for a failed call. */
export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.status} ${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reads `path` now, then again each time it changes: a blocking query with the last index
 * (`index=N&wait=5m`, or `wait`), so an idle dashboard costs the agent one parked request. Stops when
 * `signal` aborts. After an error it waits before asking again (1 s, doubling to 30 s).
 */
export function watchBlocking<T>(
  path: string,
  signal: AbortSignal,
  onAnswer: (body: T) => void,
  onError: (err: unknown) => void,
  wait = '5m',
  quiet = false,
): void {
  const sep = path.includes('?') ? '&' : '?';
  void (async () => {
    let index: number | undefined;
    let backoffMs = 1000;
    while (!signal.aborted) {
      try {
        const url = index === undefined ? path : `${path}${sep}index=${index}&wait=${wait}`;
        const r = await call<T>('GET', url, { signal, quiet });
        backoffMs = 1000;
        // An index that did not move means the wait ran out: nothing changed.
        if (r.index === undefined || index === undefined || r.index > index) onAnswer(r.body);
        // An index going backwards (a restarted agent) starts over.
        index =
          r.index !== undefined && (index === undefined || r.index >= index) ? r.index : undefined;
        if (r.index === undefined) return;
      } catch (err) {
        if (signal.aborted) return;
        onError(err);
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    }
  })();
}

/**
 * The live answer of `path` ({@link watchBlocking} while the component is mounted): undefined
 * until the first answer; `error` holds the last failure until the next answer. `quiet`: a
 * refusal does not ask for a token (a read the page can do without).
 */
export function useBlocking<T>(
  path: string,
  wait?: string,
  quiet = false,
): { data: T | undefined; error: string | undefined } {
  const [state, setState] = useState<{ data: T | undefined; error: string | undefined }>({
    data: undefined,
    error: undefined,
  });
  useEffect(() => {
    const ac = new AbortController();
    watchBlocking<T>(
      path,
      ac.signal,
      (data) => setState({ data, error: undefined }),
      (err) => setState((s) => ({ ...s, error: messageOf(err) })),
      wait,
      quiet,
    );
    return () => ac.abort();
  }, [path, wait, quiet]);
  return state;
}
