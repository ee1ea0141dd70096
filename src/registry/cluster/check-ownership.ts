/** @module CheckOwnership: which agent runs an instance's checks (the registry's view of it). */

/**
 * Answers whether this agent runs an instance's checks, and says when the answer may change.
 *
 * Contract: the registry (its health manager) calls `owns` for each instance it tracks, often
 * (on every registration and status change), so it MUST be synchronous, cheap and MUST NOT
 * throw; it answers from memory, never from etcd. Every agent MUST compute the same owner from
 * the same live members, so no check runs twice in steady state and none is orphaned.
 * `onChange` listeners are called after the answers may have changed; the registry then
 * re-reads `owns` for every instance.
 */
export interface CheckOwnership {
  owns(instanceId: string): boolean;
  /** Called after the set of live members changed. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/** The embedded (single-agent) case: this agent owns everything, always. */
export const OWN_EVERYTHING: CheckOwnership = Object.freeze({
  owns: () => true,
  onChange: () => () => undefined,
});
