/** @module Unit tests of client/undici.ts: undici's own Agent, and request() as undici's index has it. */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from '../../../src/client/undici.js';

describe('client/undici', () => {
  const seen: { method: string; url: string; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      res.end(`${req.method} ${req.url}`);
    });
  });
  let base = '';
  const agent = new Agent({ keepAliveTimeout: 1_000 });

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await agent.close();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('hands out the Agent class of undici itself', async () => {
    const undici = await import('undici');
    assert.equal(Agent, undici.Agent);
  });

  it('sends GET without a body and keeps the path and query', async () => {
    const res = await request(`${base}/a/b?x=1&y=2`, { dispatcher: agent });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'GET /a/b?x=1&y=2');
  });

  it('sends PUT when there is a body and no method, and the method given otherwise', async () => {
    const put = await request(`${base}/put`, { dispatcher: agent, body: 'one' });
    assert.equal(await put.body.text(), 'PUT /put');
    const post = await request(`${base}/post`, { dispatcher: agent, method: 'POST', body: 'two' });
    assert.equal(await post.body.text(), 'POST /post');
    assert.deepEqual(
      seen.slice(-2).map((s) => s.body),
      ['one', 'two'],
    );
  });

  it('rejects, as undici does, when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await assert.rejects(request(`http://127.0.0.1:${port}/`, { dispatcher: agent }), {
      code: 'ECONNREFUSED',
    });
  });
});
