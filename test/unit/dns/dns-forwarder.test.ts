/** parseRecursor: the recursor addresses the options accept. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRecursor } from '../../../src/dns/dns-forwarder.js';

describe('parseRecursor', () => {
  it('reads host, host:port and [v6]:port, with port 53 by default', () => {
    assert.deepEqual(parseRecursor('1.1.1.1'), { host: '1.1.1.1', port: 53 });
    assert.deepEqual(parseRecursor('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseRecursor('::1'), { host: '::1', port: 53 });
    assert.deepEqual(parseRecursor('[::1]:5353'), { host: '::1', port: 5353 });
    assert.deepEqual(parseRecursor('[2001:db8::1]'), { host: '2001:db8::1', port: 53 });
  });
});
