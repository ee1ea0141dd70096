/**
 * @module The path an AuthorizationPolicy sees, normalized as Istio's default (`BASE`) does
 * before it authorizes: backslashes become slashes, percent-encoded unreserved characters are
 * decoded (`%2e` is `.`, `%41` is `A`; RFC 3986 6.2.2.2) and the rest written in upper-case hex
 * (6.2.2.1), then dot segments are removed (5.2.4), so `/public/../admin` and `/%2e%2e/admin`
 * are `/admin`. The sidecar forwards this path, so the app serves what was authorized. An
 * encoded slash (`%2F`) stays as it is (Istio's default too): it is not a separator here.
 */

/** RFC 3986 2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function unreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** Whether `path` may change: it has a backslash, a percent sign or a dot segment. */
function mayChange(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x5c /* \ */ || c === 0x25 /* % */) return true;
    if (c === 0x2e /* . */ && (i === 0 || path.charCodeAt(i - 1) === 0x2f)) {
      const next = path.charCodeAt(i + 1);
      // "." or ".." as a whole segment.
      if (Number.isNaN(next) || next === 0x2f) return true;
      if (next === 0x2e) {
        const after = path.charCodeAt(i + 2);
        if (Number.isNaN(after) || after === 0x2f) return true;
      }
    }
  }
  return false;
}

/** RFC 3986 5.2.4 remove_dot_segments, on a path whose "." and ".." are literal. */
function removeDotSegments(path: string): string {
  const absolute = path.startsWith('/');
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = absolute ? 1 : 0; i < segments.length; i++) {
    const s = segments[i] as string;
    const last = i === segments.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  return (absolute ? '/' : '') + out.join('/');
}

/**
 * `path` (without its query) normalized; the same string when there is nothing to do (the
 * common case allocates nothing).
 */
export function normalizePath(path: string): string {
  if (!mayChange(path)) return path;
  // Dot segments alone (the usual case): no decoding pass.
  if (!path.includes('%') && !path.includes('\\')) return removeDotSegments(path);
  let decoded = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x5c) {
      decoded += '/';
      continue;
    }
    if (c === 0x25 && i + 2 < path.length) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        const byte = hi * 16 + lo;
        decoded += unreserved(byte)
          ? String.fromCharCode(byte)
          : `%${path[i + 1]?.toUpperCase()}${path[i + 2]?.toUpperCase()}`;
        i += 2;
        continue;
      }
    }
    decoded += path[i];
  }
  return removeDotSegments(decoded);
}
