/**
 * @module Consul's `filter` query parameter (go-bexpr): a parser for the common grammar and an
 * evaluator over the JSON shapes the /v1 endpoints answer. Compiled once per request, then run on
 * every element.
 *
 * Supported: `Sel == v`, `Sel != v`, `Sel is empty`, `Sel is not empty`, `v in Sel`,
 * `v not in Sel`, `Sel contains v`, `Sel not contains v`, `Sel matches "re"`,
 * `Sel not matches "re"`, combined with `and`, `or`, `not` and parentheses. Selectors are dotted
 * paths (`Service.Meta.env`, `Checks.Status`) or `Meta["key"]`; values are "strings",
 * `raw strings`, numbers, true/false. A path that crosses a list (Checks.Status) matches when any
 * element does. A `matches` pattern is RE2 syntax and a search (unanchored), as with go-bexpr's
 * `regexp.MatchString`, compiled by protocol/user-regex.ts (linear-time matching, size capped).
 */
import { errors, isMeshError, type MeshError } from '../../core/errors.js';
import { compileUserRegex, type UserRegex } from '../../protocol/user-regex.js';

/** A compiled filter: true when the element is kept. MUST NOT throw. */
export type ConsulFilter = (element: unknown) => boolean;

/** Longest filter expression accepted (a query parameter, not a program). */
export const MAX_FILTER_LENGTH = 4096;
/** Deepest nesting of parentheses and `not`s accepted. */
const MAX_DEPTH = 32;
const MAX_REGEX_LENGTH = 512;

type Token =
  | { readonly t: 'word'; readonly v: string; readonly at: number }
  | { readonly t: 'str'; readonly v: string; readonly at: number }
  | { readonly t: 'num'; readonly v: string; readonly at: number }
  | {
      readonly t: 'op';
      readonly v: '==' | '!=' | '(' | ')' | '[' | ']' | '.';
      readonly at: number;
    };

const fail = (reason: string): MeshError =>
  errors.validation('filter', `Failed to create boolean expression evaluator: ${reason}`);

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const at = i;
    if (c === '=' || c === '!') {
      if (src[i + 1] !== '=') throw fail(`unexpected "${c}" at ${at}`);
      out.push({ t: 'op', v: c === '=' ? '==' : '!=', at });
      i += 2;
    } else if (c === '(' || c === ')' || c === '[' || c === ']' || c === '.') {
      out.push({ t: 'op', v: c, at });
      i++;
    } else if (c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= src.length) throw fail(`unterminated string at ${at}`);
        const d = src[i] as string;
        if (d === '"') break;
        if (d === '\\') {
          const e = src[i + 1];
          if (e === undefined) throw fail(`unterminated string at ${at}`);
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          i += 2;
        } else {
          v += d;
          i++;
        }
      }
      i++;
      out.push({ t: 'str', v, at });
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) throw fail(`unterminated string at ${at}`);
      out.push({ t: 'str', v: src.slice(i + 1, end), at });
      i = end + 1;
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?\d+(\.\d+)?/.exec(src.slice(i));
      if (m === null) throw fail(`unexpected "${c}" at ${at}`);
      out.push({ t: 'num', v: m[0], at });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ t: 'word', v: m[0], at });
      i += m[0].length;
    } else {
      throw fail(`unexpected "${c}" at ${at}`);
    }
  }
  return out;
}

type Selector = readonly string[];
type Literal = string | number | boolean;

type Node =
  | { readonly k: 'and' | 'or'; readonly a: Node; readonly b: Node }
  | { readonly k: 'not'; readonly a: Node }
  | { readonly k: 'eq' | 'ne'; readonly sel: Selector; readonly value: Literal }
  | { readonly k: 'empty'; readonly sel: Selector; readonly negate: boolean }
  | { readonly k: 'in'; readonly sel: Selector; readonly value: Literal; readonly negate: boolean }
  | {
      readonly k: 'matches';
      readonly sel: Selector;
      readonly re: UserRegex;
      readonly negate: boolean;
    };

const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'contains', 'matches', 'is', 'empty']);

class Parser {
  #pos = 0;
  #depth = 0;
  constructor(readonly tokens: readonly Token[]) {}

  parse(): Node {
    if (this.tokens.length === 0) throw fail('empty expression');
    const n = this.#or();
    const rest = this.tokens[this.#pos];
    if (rest !== undefined) throw fail(`unexpected "${rest.v}" at ${rest.at}`);
    return n;
  }

  #peek(): Token | undefined {
    return this.tokens[this.#pos];
  }

  #isWord(v: string): boolean {
    const t = this.#peek();
    return t?.t === 'word' && t.v === v;
  }

  #next(what: string): Token {
    const t = this.tokens[this.#pos++];
    if (t === undefined) throw fail(`expected ${what} at the end`);
    return t;
  }

  #or(): Node {
    let a = this.#and();
    while (this.#isWord('or')) {
      this.#pos++;
      a = { k: 'or', a, b: this.#and() };
    }
    return a;
  }

  #and(): Node {
    let a = this.#unary();
    while (this.#isWord('and')) {
      this.#pos++;
      a = { k: 'and', a, b: this.#unary() };
    }
    return a;
  }

  #unary(): Node {
    if (++this.#depth > MAX_DEPTH) throw fail('expression nested too deeply');
    try {
      if (this.#isWord('not')) {
        this.#pos++;
        return { k: 'not', a: this.#unary() };
      }
      const t = this.#peek();
      if (t?.t === 'op' && t.v === '(') {
        this.#pos++;
        const n = this.#or();
        const close = this.#next('")"');
        if (close.t !== 'op' || close.v !== ')') throw fail(`expected ")" at ${close.at}`);
        return n;
      }
      return this.#match();
    } finally {
      this.#depth--;
    }
  }

  #match(): Node {
    const t = this.#peek();
    if (t === undefined) throw fail('expected a selector or a value at the end');
    if (t.t === 'str' || t.t === 'num' || (t.t === 'word' && (t.v === 'true' || t.v === 'false'))) {
      const value = this.#literal();
      let negate = false;
      if (this.#isWord('not')) {
        this.#pos++;
        negate = true;
      }
      const kw = this.#next('"in"');
      if (kw.t !== 'word' || kw.v !== 'in') throw fail(`expected "in" at ${kw.at}`);
      return { k: 'in', sel: this.#selector(), value, negate };
    }
    const sel = this.#selector();
    const op = this.#next('an operator');
    if (op.t === 'op' && (op.v === '==' || op.v === '!=')) {
      return { k: op.v === '==' ? 'eq' : 'ne', sel, value: this.#literal() };
    }
    if (op.t === 'word' && op.v === 'is') {
      let negate = false;
      if (this.#isWord('not')) {
        this.#pos++;
        negate = true;
      }
      const e = this.#next('"empty"');
      if (e.t !== 'word' || e.v !== 'empty') throw fail(`expected "empty" at ${e.at}`);
      return { k: 'empty', sel, negate };
    }
    let negate = false;
    let kw: Token = op;
    if (kw.t === 'word' && kw.v === 'not') {
      negate = true;
      kw = this.#next('"contains" or "matches"');
    }
    if (kw.t === 'word' && kw.v === 'contains') {
      return { k: 'in', sel, value: this.#literal(), negate };
    }
    if (kw.t === 'word' && kw.v === 'matches') {
      const v = this.#literal();
      if (typeof v !== 'string' || v.length > MAX_REGEX_LENGTH)
        throw fail(`"matches" takes a string of at most ${MAX_REGEX_LENGTH} characters`);
      let re: UserRegex;
      try {
        re = compileUserRegex(v, `${sel.join('.')} matches`);
      } catch (err) {
        if (!isMeshError(err)) throw err;
        throw fail(err.message);
      }
      return { k: 'matches', sel, re, negate };
    }
    throw fail(`unexpected "${kw.v}" at ${kw.at}`);
  }

  #literal(): Literal {
    const t = this.#next('a value');
    if (t.t === 'str') return t.v;
    if (t.t === 'num') return Number(t.v);
    if (t.t === 'word' && (t.v === 'true' || t.v === 'false')) return t.v === 'true';
    throw fail(`expected a value at ${t.at}`);
  }

  #selector(): Selector {
    const first = this.#next('a selector');
    if (first.t !== 'word' || KEYWORDS.has(first.v))
      throw fail(`expected a selector at ${first.at}`);
    const path = [first.v];
    for (;;) {
      const t = this.#peek();
      if (t?.t !== 'op' || (t.v !== '.' && t.v !== '[')) break;
      this.#pos++;
      if (t.v === '.') {
        const part = this.#next('a field name');
        if (part.t !== 'word') throw fail(`expected a field name at ${part.at}`);
        path.push(part.v);
      } else {
        const key = this.#next('a key');
        const close = this.#next('"]"');
        if (key.t !== 'str' || close.t !== 'op' || close.v !== ']')
          throw fail(`expected ["key"] at ${key.at}`);
        path.push(key.v);
      }
    }
    return path;
  }
}

/** Values at `path` under `root`; a list met on the way contributes each of its elements. */
function resolve(root: unknown, path: Selector): unknown[] {
  let current: unknown[] = [root];
  for (const part of path) {
    const next: unknown[] = [];
    for (const v of current) {
      for (const item of Array.isArray(v) ? v : [v]) {
        if (typeof item !== 'object' || item === null) continue;
        const o = item as Record<string, unknown>;
        if (part in o) next.push(o[part]);
        else {
          // Field names match case-insensitively (as Go struct fields do); map keys exactly.
          const lower = part.toLowerCase();
          const key = Object.keys(o).find((k) => k.toLowerCase() === lower);
          if (key !== undefined) next.push(o[key]);
        }
      }
    }
    current = next;
  }
  return current;
}

function equals(field: unknown, value: Literal): boolean {
  if (typeof field === 'number') return field === Number(value);
  if (typeof field === 'boolean') return String(field) === String(value);
  return typeof field === 'string' && field === String(value);
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v).length === 0;
  return false;
}

function holds(container: unknown, value: Literal): boolean {
  if (typeof container === 'string') return container.includes(String(value));
  if (Array.isArray(container)) return container.some((x) => equals(x, value));
  if (typeof container === 'object' && container !== null)
    return Object.hasOwn(container, String(value));
  return false;
}

function evaluate(n: Node, el: unknown): boolean {
  switch (n.k) {
    case 'and':
      return evaluate(n.a, el) && evaluate(n.b, el);
    case 'or':
      return evaluate(n.a, el) || evaluate(n.b, el);
    case 'not':
      return !evaluate(n.a, el);
    case 'eq':
      return resolve(el, n.sel).some((v) => equals(v, n.value));
    case 'ne':
      return !resolve(el, n.sel).some((v) => equals(v, n.value));
    case 'empty': {
      const vs = resolve(el, n.sel);
      const empty = vs.length === 0 || vs.every(isEmpty);
      return n.negate ? !empty : empty;
    }
    case 'in': {
      const found = resolve(el, n.sel).some((v) => holds(v, n.value));
      return n.negate ? !found : found;
    }
    case 'matches': {
      const found = resolve(el, n.sel).some((v) => typeof v === 'string' && n.re.test(v));
      return n.negate ? !found : found;
    }
  }
}

/**
 * Compiles a filter expression. Throws a validation MeshError (field `filter`) whose message
 * starts as Consul's does: `Failed to create boolean expression evaluator: ...`.
 * @example
 * const keep = compileConsulFilter('Service.Meta.env == "prod" and "v2" in Service.Tags');
 * entries.filter(keep);
 */
export function compileConsulFilter(expression: string): ConsulFilter {
  if (expression.length > MAX_FILTER_LENGTH)
    throw fail(`expression longer than ${MAX_FILTER_LENGTH} characters`);
  const ast = new Parser(tokenize(expression)).parse();
  return (element) => evaluate(ast, element);
}
