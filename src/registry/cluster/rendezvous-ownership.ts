/**
 * @module RendezvousOwnership: which agent runs the checks of an instance in cluster mode.
 *
 * Every agent sees the same live members (from etcd, under their leases) and computes the same
 * owner for each instance by rendezvous (highest random weight) hashing, so no check runs twice
 * in steady state, none is orphaned, and when an agent leaves or dies only its share moves.
 */
import type { AgentMembership } from './agent-membership.js';
import type { CheckOwnership } from './check-ownership.js';

/** Check ownership in cluster mode: rendezvous hashing over the live members. */
export class RendezvousOwnership implements CheckOwnership {
  readonly #nodeName: string;
  readonly #membership: AgentMembership;

  /** `nodeName` is this agent's name in `membership`. */
  constructor(nodeName: string, membership: AgentMembership) {
    this.#nodeName = nodeName;
    this.#membership = membership;
  }

  /**
   * True when this agent is live (its own key is in the set) and wins the instance by rendezvous
   * hashing over the live members. An agent that lost its lease owns nothing until it rejoins.
   */
  owns(instanceId: string): boolean {
    if (!this.#membership.isLive(this.#nodeName)) return false;
    return rendezvousOwner(instanceId, this.#membership.liveNames()) === this.#nodeName;
  }

  onChange(listener: () => void): () => void {
    return this.#membership.onChange(listener);
  }
}

/**
 * The owner of `key` among `members` by rendezvous hashing: the member with the highest
 * hash(member, key), ties broken by name. Undefined when there are no members.
 *
 * @example
 * rendezvousOwner('web-1', ['agent-a', 'agent-b']); // 'agent-a' or 'agent-b', the same everywhere
 */
export function rendezvousOwner(key: string, members: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  const keyHash = fnv1a(key, 0x811c9dc5);
  for (const m of members) {
    const score = fmix32(fnv1a(m, keyHash));
    if (score > bestScore || (score === bestScore && best !== undefined && m < best)) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

/** 32-bit FNV-1a over UTF-16 code units, continuing from `seed`. */
function fnv1a(s: string, seed: number): number {
  let h = seed >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** MurmurHash3's finaliser: spreads FNV's weak low bits over the whole word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
