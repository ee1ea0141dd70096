/** @module AgentMembership: the live agents of a cluster (for ownership, the API and DNS). */
import type { AgentMember } from '../../protocol/api-types.js';

/**
 * The agents of a cluster whose membership lease is alive.
 *
 * Contract: `isLive` and `liveNames` answer from memory (what the membership watch delivered)
 * and MUST be cheap and synchronous: ownership calls them per instance. `members` reads the
 * full records from the backend and MAY reject with MESHWORK_ERR_STORE_UNAVAILABLE. `onChange`
 * listeners are called, in subscription order, after the set of live names changed; a listener
 * that throws is logged and does not stop the others.
 */
export interface AgentMembership {
  /** The live agents, sorted by node name (`GET /api/v1/agents`, `meshwork members`). */
  members(): Promise<AgentMember[]>;
  /** Whether `nodeName` is live, as last seen. */
  isLive(nodeName: string): boolean;
  /** The live node names, as last seen. */
  liveNames(): Iterable<string>;
  /** Called after the set of live members changed. Returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
}
