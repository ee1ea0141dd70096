/**
 * @module A small YAML writer for the dashboard's resource view: JSON values (what the API
 * answers) as block YAML, strings quoted whenever plain style could be read back as something
 * else. Not a general YAML library: no anchors, tags or multi-line folding.
 */

/** Plain scalars that YAML 1.2 (core schema) or 1.1 readers would not read back as the string. */
const NEEDS_QUOTES =
  /^$|^[\s\-?:,[\]{}#&*!|>'"%@`~]|:\s|:$|\s#|\s$|^(?:true|false|yes|no|on|off|y|n|null|~|[-+]?(?:\d[\d_]*)?\.?\d*(?:e[-+]?\d+)?|0x[\da-f]+|0o[0-7]+|[-+]?\.inf|\.nan)$/i;
/** Characters a plain or single-quoted scalar may not hold; JSON's escapes spell them. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff\ud800-\udfff]/;

function scalar(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string')
    return NEEDS_QUOTES.test(v) || UNPRINTABLE.test(v) ? JSON.stringify(v) : v;
  return String(v);
}

function isBlock(v: unknown): v is object {
  return typeof v === 'object' && v !== null && Object.keys(v).length > 0;
}

function emptyOf(v: unknown): string | undefined {
  if (Array.isArray(v) && v.length === 0) return '[]';
  if (typeof v === 'object' && v !== null && Object.keys(v).length === 0) return '{}';
  return undefined;
}

function lines(v: unknown, indent: string): string[] {
  const out: string[] = [];
  if (Array.isArray(v)) {
    for (const item of v) {
      if (isBlock(item)) {
        const [head = '', ...rest] = lines(item, `${indent}  `);
        out.push(`${indent}- ${head.trimStart()}`, ...rest);
      } else out.push(`${indent}- ${emptyOf(item) ?? scalar(item)}`);
    }
    return out;
  }
  for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
    const key = scalar(k);
    if (isBlock(item)) out.push(`${indent}${key}:`, ...lines(item, `${indent}  `));
    else out.push(`${indent}${key}: ${emptyOf(item) ?? scalar(item)}`);
  }
  return out;
}

/** `value` as a YAML document (no `---`), ending with a newline. */
export function toYaml(value: unknown): string {
  return isBlock(value)
    ? `${lines(value, '').join('\n')}\n`
    : `${emptyOf(value) ?? scalar(value)}\n`;
}
