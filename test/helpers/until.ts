/** @module Test helper: poll a condition with a bounded deadline (for state other processes change). */

/**
 * Polls `ok` every `everyMs` until it answers something other than undefined or false, and
 * answers that; fails with "not <what> after <timeoutMs> ms" past the deadline.
 */
export async function until<T>(
  ok: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await ok();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`not ${what} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
