import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { authorityPort } from '../../../src/sidecar/sidecar-proxy.js';

describe('authorityPort', () => {
  it('reads the port of host:port and [v6]:port, and falls back without one', () => {
    assert.equal(authorityPort('payments:8080', 80), 8080);
    assert.equal(authorityPort('[::1]:9000', 80), 9000);
    assert.equal(authorityPort('payments', 80), 80);
    assert.equal(authorityPort('[::1]', 80), 80);
    assert.equal(authorityPort('payments:', 80), 80);
    assert.equal(authorityPort('payments:0', 80), 80);
    assert.equal(authorityPort('payments:65536', 80), 80);
  });

  it('answers a port in 1..65535 or the fallback, for any string (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 65_535 }), (s, fallback) => {
        const p = authorityPort(s, fallback);
        assert.ok(Number.isInteger(p) && p >= 1 && p <= 65_535);
        if (!/:\d+$/.test(s)) assert.equal(p, fallback);
      }),
      { seed: 19 },
    );
  });

  it('round-trips any host and port it is given (property)', () => {
    const host = fc.oneof(
      fc.domain(),
      fc.ipV4(),
      fc.ipV6().map((v6) => `[${v6}]`),
    );
    fc.assert(
      fc.property(host, fc.integer({ min: 1, max: 65_535 }), (h, port) => {
        assert.equal(authorityPort(`${h}:${port}`, 80), port);
        assert.equal(authorityPort(h, 80), 80);
      }),
      { seed: 19 },
    );
  });
});
