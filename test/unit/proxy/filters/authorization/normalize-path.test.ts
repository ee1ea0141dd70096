import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { normalizePath } from '../../../../../src/proxy/filters/authorization/normalize-path.js';

describe('normalizePath', () => {
  it('removes dot segments, decodes unreserved escapes and turns backslashes into slashes', () => {
    const cases: [string, string][] = [
      ['/a/b', '/a/b'],
      ['/public/../admin', '/admin'],
      ['/%2e%2e/admin', '/admin'],
      ['/%2E%2E/admin', '/admin'],
      ['/a/./b/.', '/a/b/'],
      ['/a/b/..', '/a/'],
      ['/..', '/'],
      ['/../../x', '/x'],
      ['/a\\..\\admin', '/admin'],
      ['/%41dmin', '/Admin'],
      ['/a%2fb', '/a%2Fb'],
      ['/a%2Fb/../c', '/c'],
      ['/100%', '/100%'],
      ['/%zz', '/%zz'],
      ['/a/.hidden/..x', '/a/.hidden/..x'],
      ['/a//b', '/a//b'],
      ['*', '*'],
    ];
    for (const [input, want] of cases) assert.equal(normalizePath(input), want, input);
  });

  it('answers the same string when nothing changes', () => {
    const p = '/usuarios/42/pedidos.json';
    assert.equal(normalizePath(p), p);
  });

  it('is idempotent and leaves no dot segment nor backslash (fast-check)', () => {
    const segment = fc.oneof(
      fc.constantFrom('.', '..', '%2e', '%2E%2e', '', 'a', 'admin', '\\', '%41', '%2f', '%'),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), (segments) => {
        const path = `/${segments.join('/')}`;
        const once = normalizePath(path);
        assert.equal(normalizePath(once), once, path);
        assert.ok(!once.includes('\\'), once);
        assert.ok(once.startsWith('/'), once);
        const parts = once.split('/');
        assert.ok(!parts.includes('.') && !parts.includes('..'), `${path} -> ${once}`);
      }),
      { numRuns: 3000 },
    );
  });
});
