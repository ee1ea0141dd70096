/** protoKeyPath and hasControlChars (issue 16: keys that vanish, names that print badly). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hasControlChars, protoKeyPath } from '../../../src/protocol/validation.js';

describe('protoKeyPath', () => {
  it('finds a __proto__ key anywhere in parsed JSON and names its path', () => {
    assert.equal(protoKeyPath(JSON.parse('{"meta":{"__proto__":"x"}}')), 'meta.__proto__');
    assert.equal(protoKeyPath(JSON.parse('{"a":[1,{"b":{"__proto__":{}}}]}')), 'a[1].b.__proto__');
    assert.equal(protoKeyPath(JSON.parse('{"__proto__":1}')), '__proto__');
    assert.equal(protoKeyPath({ meta: { constructor: 'c' }, tags: ['__proto__'] }), undefined);
  });

  it('walks nesting deeper than the call stack', () => {
    const depth = 200_000;
    const deep = JSON.parse(`${'['.repeat(depth)}{"__proto__":1}${']'.repeat(depth)}`) as unknown;
    assert.match(protoKeyPath(deep) ?? '', /^(\[0\]){200000}\.__proto__$/);
  });
});

describe('hasControlChars', () => {
  it('finds C0, DEL and C1, and nothing in printable text', () => {
    for (const s of ['\u0000', 'a\tb', 'a\nb', '\u001b[31m', '\u007f', '\u0085', '\u009f'])
      assert.ok(hasControlChars(s), JSON.stringify(s));
    for (const s of ['web', 'zone=eu-1a', 'café', '名前', ' ', '\u00a0'])
      assert.ok(!hasControlChars(s), s);
  });
});
