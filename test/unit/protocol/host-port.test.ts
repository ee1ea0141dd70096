/** hostPortSchema: the one listen-address rule of the agent, the gateway and DNS. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostPortSchema } from '../../../src/protocol/host-port.js';

const messages = (r: { success: boolean; error?: { issues: { message: string }[] } }): string[] =>
  r.success ? [] : (r.error?.issues.map((i) => i.message) ?? []);

describe('hostPortSchema', () => {
  it('accepts host:port and [v6]:port, port 0 to 65535', () => {
    const s = hostPortSchema('127.0.0.1:8500');
    for (const v of ['127.0.0.1:0', 'localhost:8500', '[::1]:65535', 'a.b-c:1']) {
      assert.ok(s.safeParse(v).success, v);
    }
  });

  it('names its example, and refuses a port past 65535', () => {
    const s = hostPortSchema('127.0.0.1:8080');
    assert.ok(messages(s.safeParse('nope')).includes('must be host:port (e.g. 127.0.0.1:8080)'));
    assert.deepEqual(messages(s.safeParse('1.2.3.4:65536')), ['port must be 0-65535']);
    assert.equal(s.safeParse('off').success, false);
  });

  it('takes "off" with orOff, and says so', () => {
    const s = hostPortSchema('127.0.0.1:8600', { orOff: true });
    assert.ok(s.safeParse('off').success);
    assert.ok(
      messages(s.safeParse('nope')).includes('must be host:port (e.g. 127.0.0.1:8600) or "off"'),
    );
  });
});
