/**
 * @module IP addresses and CIDR blocks for AuthorizationPolicy `ipBlocks` and the `source.ip` /
 * `destination.ip` conditions: parsed once per policy into numbers, matched per request without
 * allocation. IPv4 and IPv6 (RFC 4291 2.2 text forms); an IPv4-mapped IPv6 address
 * (`::ffff:10.1.2.3`, what a dual-stack socket reports) is also that IPv4 address, and an IPv4
 * address is also its mapped IPv6 form, so either kind of block matches it.
 */

/** An address as four 32-bit words of its IPv6 form (IPv4: `::ffff:a.b.c.d`), plus its family. */
export interface ParsedIp {
  /** 4: IPv4, or IPv4-mapped IPv6; 6: any other IPv6. */
  family: 4 | 6;
  readonly words: Uint32Array;
}

/** `a.b.c.d` from `s[from..to)` as a 32-bit number, or -1. */
function parseV4(s: string, from: number, to: number): number {
  let value = 0;
  let parts = 0;
  let i = from;
  while (i <= to) {
    let n = 0;
    let digits = 0;
    const start = i;
    while (i < to) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      n = n * 10 + (c - 0x30);
      digits++;
      i++;
    }
    // No empty part, no leading zero (node's isIP refuses "01.2.3.4" too), at most 255.
    if (digits === 0 || digits > 3 || n > 255 || (digits > 1 && s.charCodeAt(start) === 0x30))
      return -1;
    value = value * 256 + n;
    parts++;
    if (i === to) break;
    if (s.charCodeAt(i) !== 0x2e /* . */ || parts === 4) return -1;
    i++;
  }
  return parts === 4 ? value : -1;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Scratch for the 16-bit groups of an IPv6 address being parsed. */
const GROUPS = new Uint16Array(8);

/**
 * Parses `s[0..to)` as IPv6 into `out` (words); false when it is not one. Groups of 1-4 hex
 * digits, one `::` at most, an IPv4 tail in place of the last two groups.
 */
function parseV6(s: string, to: number, out: Uint32Array): boolean {
  let count = 0;
  let gap = -1;
  let i = 0;
  if (to >= 2 && s.charCodeAt(0) === 0x3a && s.charCodeAt(1) === 0x3a) {
    gap = 0;
    i = 2;
  } else if (s.charCodeAt(0) === 0x3a) return false;
  while (i < to) {
    if (count === 8) return false;
    const start = i;
    let n = 0;
    while (i < to && i - start < 5) {
      const d = hexDigit(s.charCodeAt(i));
      if (d < 0) break;
      n = n * 16 + d;
      i++;
    }
    const digits = i - start;
    if (i < to && s.charCodeAt(i) === 0x2e /* . */) {
      // An IPv4 tail: the last two groups.
      if (count > 6) return false;
      const v4 = parseV4(s, start, to);
      if (v4 < 0) return false;
      GROUPS[count++] = v4 >>> 16;
      GROUPS[count++] = v4 & 0xffff;
      i = to;
      break;
    }
    if (digits === 0 || digits > 4) return false;
    GROUPS[count++] = n;
    if (i === to) break;
    if (s.charCodeAt(i) !== 0x3a) return false;
    i++;
    if (i < to && s.charCodeAt(i) === 0x3a) {
      if (gap >= 0) return false;
      gap = count;
      i++;
    } else if (i === to) return false; // a trailing single ":"
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  const fill = 8 - count;
  for (let w = 0; w < 4; w++) {
    const g = (k: number): number => {
      if (gap < 0 || k < gap) return GROUPS[k] as number;
      if (k < gap + fill) return 0;
      return GROUPS[k - fill] as number;
    };
    out[w] = ((g(2 * w) << 16) | g(2 * w + 1)) >>> 0;
  }
  return true;
}

/**
 * Parses an IPv4 or IPv6 address (an IPv6 zone, `%eth0`, is ignored) into `out`; false when
 * `s` is not one. Allocates nothing.
 */
export function parseIpInto(s: string, out: ParsedIp): boolean {
  const w = out.words;
  let to = s.length;
  const zone = s.indexOf('%');
  if (zone >= 0) to = zone;
  if (s.indexOf(':') < 0) {
    if (zone >= 0) return false;
    const v4 = parseV4(s, 0, to);
    if (v4 < 0) return false;
    w[0] = 0;
    w[1] = 0;
    w[2] = 0xffff;
    w[3] = v4;
    out.family = 4;
    return true;
  }
  if (!parseV6(s, to, w)) return false;
  out.family = w[0] === 0 && w[1] === 0 && w[2] === 0xffff ? 4 : 6;
  return true;
}

/** A CIDR block (or one address) as a matcher. */
export interface IpBlock {
  /** The block as written. */
  readonly text: string;
  matches(ip: ParsedIp): boolean;
}

/**
 * Parses `text` (an address or `address/bits`, IPv4 or IPv6) into a block, or answers the
 * reason it is not one.
 */
export function parseIpBlock(text: string): IpBlock | string {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const parsed: ParsedIp = { family: 4, words: new Uint32Array(4) };
  if (address.includes('%') || !parseIpInto(address, parsed))
    return `"${text}" is not an IP address or a CIDR block`;
  const v4 = !address.includes(':');
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const b = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(b) || Number(b) > max)
      return `"${text}": the prefix length must be 0..${max}`;
    bits = Number(b);
  }
  // The block on the IPv6 form: an IPv4 block covers the mapped range ::ffff:a.b.c.d/(96 + bits).
  const total = v4 ? 96 + bits : bits;
  const masks = new Uint32Array(4);
  const net = new Uint32Array(4);
  for (let i = 0; i < 4; i++) {
    const wordBits = Math.max(0, Math.min(32, total - 32 * i));
    const mask = wordBits === 0 ? 0 : (0xffffffff << (32 - wordBits)) >>> 0;
    masks[i] = mask;
    net[i] = ((parsed.words[i] as number) & mask) >>> 0;
  }
  return {
    text,
    matches(ip: ParsedIp): boolean {
      const w = ip.words;
      for (let i = 0; i < 4; i++)
        if (((w[i] as number) & (masks[i] as number)) >>> 0 !== net[i]) return false;
      return true;
    },
  };
}

/** The last address parsed by parseIpCached: a connection asks for the same one per request. */
let lastText: string | undefined;
const LAST: ParsedIp = { family: 4, words: new Uint32Array(4) };
let lastValid = false;

/**
 * `text` parsed (undefined: not an address), from a one-entry cache. The answer is shared:
 * read it before the next call.
 */
export function parseIpCached(text: string): ParsedIp | undefined {
  if (text !== lastText) {
    lastText = text;
    lastValid = parseIpInto(text, LAST);
  }
  return lastValid ? LAST : undefined;
}
