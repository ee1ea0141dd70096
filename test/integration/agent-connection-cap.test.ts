/**
 * The per-client connection cap (Consul's http_max_conns_per_client), with real sockets at a cap
 * of 3: the fourth connection from one IP is answered 429 with a JSON body and closed, counted in
 * a metric; another client IP is not affected; a closed connection frees its place.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

const CAP = 3;

/** A connected socket (from `localAddress`), kept open. */
function open(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends one GET on a fresh connection and answers everything read until the server closes. */
function oneRequest(port: number, localAddress = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress }, () => {
      s.write('GET /health/live HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n');
    });
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.once('close', () => resolve(text));
    s.once('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error('no answer in 10 s')));
  });
}

describe('HTTP connections per client IP', () => {
  let agent: TestAgent;
  let port = 0;
  const held: Socket[] = [];
  before(async () => {
    agent = await startTestAgent({ flags: { httpMaxConnsPerClient: CAP } });
    port = Number(new URL(agent.url).port);
  });
  after(async () => {
    for (const s of held) s.destroy();
    await agent.stop();
  });

  it('answers the connection past the cap 429 with a JSON body, then closes it', async () => {
    for (let i = 0; i < CAP; i++) held.push(await open(port));
    const answer = await oneRequest(port);
    assert.match(answer, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(answer, /\r\nconnection: close\r\n/);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
      error: { code: string; message: string };
    };
    assert.equal(body.error.code, 'MESHWORK_ERR_API_TOO_MANY_CONNECTIONS');
    assert.match(body.error.message, /too many concurrent connections \(at most 3\)/);
  });

  it('does not count another client IP against the cap', async () => {
    const answer = await oneRequest(port, '127.0.0.2');
    assert.match(answer, /^HTTP\/1\.1 200 /);
  });

  it('frees a place when a connection closes, and counts the refusals', async () => {
    held.pop()?.destroy();
    // Until the agent has seen the close, a new connection may still be refused (and counted).
    let refusedMeanwhile = 0;
    const text = await until(
      async () => {
        const r = await http(agent.url, 'GET', '/metrics', undefined, { connection: 'close' });
        if (r.status === 429) refusedMeanwhile++;
        return r.status === 200 ? r.text : undefined;
      },
      10_000,
      'a place freed',
    );
    const line = text
      .split('\n')
      .find((l) => l.startsWith('meshwork_api_connections_rejected_total'));
    assert.equal(line, `meshwork_api_connections_rejected_total ${1 + refusedMeanwhile}`);
  });
});
