/** @module retryCommit: runs a read-check-commit attempt again while it loses its compare to other agents' writes. */
import { errors } from '../core/errors.js';

/** A write that keeps losing its compare to other agents' writes gives up after this many. */
export const MAX_COMMIT_ATTEMPTS = 5;

/**
 * Runs `attempt` until it answers: it answers undefined when its commit lost a compare to
 * another agent's write (cluster mode), and then runs again against the updated view. Throws
 * STORE_UNAVAILABLE after {@link MAX_COMMIT_ATTEMPTS}.
 */
export async function retryCommit<T>(attempt: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < MAX_COMMIT_ATTEMPTS; i++) {
    const r = await attempt();
    if (r !== undefined) return r;
  }
  throw errors.storeUnavailable(
    `gave up after ${MAX_COMMIT_ATTEMPTS} attempts: other agents kept changing the same instances`,
  );
}
