/** @module hash53: the stable string hash behind ring-hash and maglev. */

/**
 * cyrb53 (bryc, public domain): two 32-bit multiply-xorshift lanes over the UTF-16 code units,
 * with murmur3-style final mixing, folded into 53 bits so the result is an exact JS number.
 * `salt` (a 32-bit integer: a virtual node's number, maglev's second hash) is hashed as two
 * more code units after the text, so (text, salt) pairs never collide by construction; cyrb53's
 * own seed is XORed into the state and made ("a", 1) equal ("b", 2).
 * Hand-written rather than a dependency: ten lines, no BigInt (64-bit FNV or xxhash in JS
 * needs BigInt or 16-bit limbs, both slower per pick), and the SDK stays dependency-light.
 * Stable across processes and versions: changing it would move every sticky session.
 */
export function hash53(text: string, salt = 0): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  const low = salt & 0xffff;
  const high = (salt >>> 16) & 0xffff;
  h1 = Math.imul(Math.imul(h1 ^ low, 2654435761) ^ high, 2654435761);
  h2 = Math.imul(Math.imul(h2 ^ low, 1597334677) ^ high, 1597334677);
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** 2^53: hash53 answers in [0, HASH_SPACE). */
export const HASH_SPACE = 9007199254740992;
