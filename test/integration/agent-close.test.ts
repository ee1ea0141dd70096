/**
 * The agent's API closes promptly: a connection a client opened and never sent a request on (a
 * pool's spare connection) is closed when the agent stops, rather than holding the close open
 * (the native API suite once took 73 s for that alone).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, it } from 'node:test';
import { http, startTestAgent } from '../helpers/agent.js';
import { makeTestPki } from '../helpers/tls-certs.js';

describe('agent close', () => {
  it('closes a connection that never carried a request', { timeout: 20_000 }, async () => {
    const agent = await startTestAgent();
    const { hostname, port } = new URL(agent.url);
    const spare = connect(Number(port), hostname);
    await once(spare, 'connect');
    const spareClosed = once(spare, 'close');
    try {
      // A connection that carried a request and stays open (keep-alive) beside it.
      assert.equal((await http(agent.url, 'GET', '/health/live')).status, 200);
      await agent.stop();
      await spareClosed;
      assert.equal(spare.destroyed, true);
    } finally {
      // Without the fix the agent never closes it: the test times out, and this ends it.
      spare.destroy();
    }
  });

  it('closes one on its HTTPS listener beside HTTP too', { timeout: 20_000 }, async () => {
    const pki = makeTestPki();
    const agent = await startTestAgent({
      flags: {
        https: '127.0.0.1:0',
        tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, verifyIncoming: false },
      },
    });
    const spare = tlsConnect({
      host: '127.0.0.1',
      port: Number(new URL(agent.httpsUrl ?? '').port),
      rejectUnauthorized: false,
    });
    try {
      await once(spare, 'secureConnect');
      const spareClosed = once(spare, 'close');
      await agent.stop();
      await spareClosed;
      assert.equal(spare.destroyed, true);
    } finally {
      spare.destroy();
      pki.remove();
    }
  });
});
