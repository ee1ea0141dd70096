/**
 * @module CheckOwnership: which agent runs the checks of an instance in cluster mode.
 *
 * Every agent sees the same live members (from etcd, under their leases) and computes the same
 * owner for each instance by rendezvous (highest random weight) hashing, so no check runs twice
 * in steady state, none is orphaned, and when an agent leaves or dies only its share moves.
 */

/** Answers whether this agent runs an instance's checks, and says when the answer may change. */
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
