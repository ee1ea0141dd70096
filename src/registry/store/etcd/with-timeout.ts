/** @module withTimeout: a deadline on an etcd call that may never answer. */

/**
 * Settles as `p` does, or rejects with `no answer in <ms> ms` if it has not settled by then.
 * `p` itself goes on (etcd calls cannot be cancelled); its late outcome is ignored.
 *
 * @example
 * const res = await withTimeout(client.kv.txn(request), 5_000);
 */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}
