/** createRequestGuard: which Hosts and Origins the API answers (issue 16: DNS rebinding). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '../../../src/core/errors.js';
import { createRequestGuard } from '../../../src/registry-api/request-guard.js';

const guard = createRequestGuard({
  allowedHosts: ['consul.internal', '*.mesh.example'],
  allowedOrigins: ['https://UI.example.com:443'],
  knownNames: ['box-1'],
});
const code = (headers: Record<string, string>, httpVersion = '1.1') =>
  guard({ url: '/', httpVersion, headers }).error?.code;

describe('createRequestGuard', () => {
  it('answers IP literals, localhost names, known names and allowedHosts, with any port', () => {
    for (const host of [
      '127.0.0.1',
      '192.168.1.9:8500',
      '[::1]:8500',
      '[fe80::1]',
      'localhost',
      'a.b.localhost:3',
      'box-1:8500',
      'BOX-1.',
      'consul.internal:1',
      'x.mesh.example',
    ])
      assert.equal(code({ host }), undefined, host);
  });

  it('refuses other names and malformed Hosts', () => {
    for (const host of [
      'evil.example',
      'mesh.example',
      'box-1.evil.example',
      '127.0.0.1.nip.io',
      '[not-v6]',
      '127.0.0.1:8500:1',
      'a b',
      '',
    ])
      assert.equal(code({ host }), ERROR_CODES.HOST_NOT_ALLOWED, host);
  });

  it('passes the own origin and allowedOrigins (with CORS), and refuses the rest', () => {
    const own = guard({
      httpVersion: '1.1',
      headers: { host: 'localhost:8500', origin: 'http://localhost:8500' },
    });
    assert.deepEqual(own, { error: undefined });
    const listed = guard({
      httpVersion: '1.1',
      headers: { host: 'localhost:8500', origin: 'https://ui.example.com' },
    });
    assert.equal(listed.error, undefined);
    assert.equal(listed.corsOrigin, 'https://ui.example.com');
    for (const origin of ['http://localhost:8501', 'http://localhost', 'null', 'file://'])
      assert.equal(
        code({ host: 'localhost:8500', origin }),
        ERROR_CODES.ORIGIN_NOT_ALLOWED,
        origin,
      );
    assert.equal(
      code({ host: 'localhost:80', origin: 'http://localhost' }),
      undefined,
      'port 80 is the default of http',
    );
  });

  it('turns each check off with "*"', () => {
    const open = createRequestGuard({ allowedHosts: ['*'], allowedOrigins: ['*'], knownNames: [] });
    const v = open({ httpVersion: '1.1', headers: { host: 'evil.example', origin: 'null' } });
    assert.equal(v.error, undefined);
    assert.equal(v.corsOrigin, 'null');
  });

  it('refuses URLs over 8 KiB and HTTP/1.1 without Host; HTTP/1.0 may omit it', () => {
    const long = guard({
      url: `/${'a'.repeat(8192)}`,
      httpVersion: '1.1',
      headers: { host: 'localhost' },
    });
    assert.equal(long.error?.code, ERROR_CODES.URI_TOO_LONG);
    assert.equal(code({}, '1.0'), undefined);
    assert.equal(code({}), ERROR_CODES.BAD_REQUEST);
  });
});
