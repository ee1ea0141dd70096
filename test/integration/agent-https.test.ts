/**
 * Issue 20: the agent's HTTPS listener beside the plain one, in process, with real sockets: the
 * per-client connection cap counts both listeners' connections together, and a client refused on
 * HTTPS reads the 429 over TLS.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';
import { makeTestPki, type TestPki } from '../helpers/tls-certs.js';

const CAP = 2;

describe('the agent over HTTPS beside HTTP', () => {
  let pki: TestPki;
  let agent: TestAgent;
  let ca: string;
  const held: Socket[] = [];

  before(async () => {
    pki = makeTestPki();
    ca = readFileSync(pki.caFile, 'utf8');
    agent = await startTestAgent({
      flags: {
        https: '127.0.0.1:0',
        tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, verifyIncoming: false },
        httpMaxConnsPerClient: CAP,
      },
    });
  });
  after(async () => {
    for (const s of held) s.destroy();
    await agent.stop();
    pki.remove();
  });

  const httpsPort = (): number => Number(new URL(agent.httpsUrl ?? '').port);

  /** A TLS connection to the HTTPS listener, handshake done. */
  const openTls = (): Promise<TLSSocket> =>
    new Promise((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port: httpsPort(), ca }, () => resolve(s));
      s.once('error', reject);
    });

  /** One GET over a fresh TLS connection; everything read until the server closes. */
  const oneTlsRequest = async (): Promise<string> => {
    const s = await openTls();
    return new Promise((resolve, reject) => {
      let text = '';
      s.setEncoding('utf8');
      s.on('data', (d: string) => (text += d));
      s.once('close', () => resolve(text));
      s.once('error', reject);
      s.setTimeout(10_000, () => s.destroy(new Error('no answer in 10 s')));
      s.write('GET /health/live HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
    });
  };

  it('answers over TLS on its own port, the plain port still plain', async () => {
    assert.match(agent.url, /^http:\/\//);
    assert.match(agent.httpsUrl ?? '', /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(httpsPort(), Number(new URL(agent.url).port));
    const answer = await oneTlsRequest();
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /\{"status":"live"\}$/);
  });

  it('counts plain and TLS connections against one cap; the refused TLS client reads 429', async () => {
    held.push(
      await new Promise<Socket>((resolve, reject) => {
        const s = tcpConnect({ host: '127.0.0.1', port: Number(new URL(agent.url).port) }, () =>
          resolve(s),
        );
        s.once('error', reject);
      }),
    );
    held.push(await openTls());
    const answer = await oneTlsRequest();
    assert.match(answer, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(answer, /MESHWORK_ERR_API_TOO_MANY_CONNECTIONS/);
  });
});
