/** @module Unit tests of client/undici.ts: undici's own Agent, and request() as undici's index has it. */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { Agent, loadUndiciParts, request, undiciParts } from '../../../src/client/undici.js';

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

describe("loadUndiciParts: undici's own files, checked, else its public index", () => {
  const real = createRequire(import.meta.url);

  it('takes the files in this build, with no fallback', () => {
    assert.equal(undiciParts.fallback, undefined);
    const parts = loadUndiciParts(real);
    assert.equal(parts.fallback, undefined);
    assert.equal(parts.Agent, real('undici').Agent);
  });

  it('falls back to the index, saying why, where the files are missing', () => {
    const parts = loadUndiciParts((id) => {
      if (id.startsWith('undici/lib/')) throw new Error(`Cannot find module '${id}'`);
      return real(id);
    });
    assert.match(parts.fallback ?? '', /Cannot find module 'undici\/lib\/dispatcher\/agent\.js'/);
    const index = real('undici');
    assert.equal(parts.Agent, index.Agent);
    assert.equal(parts.dispatcherRequest, index.Dispatcher.prototype.request);
  });

  it('falls back where a file exports something else than this build expects', () => {
    const parts = loadUndiciParts((id) =>
      id === 'undici/lib/api/api-request.js' ? { request: () => undefined } : real(id),
    );
    assert.match(parts.fallback ?? '', /api-request\.js does not export a function/);
    const noDispatch = loadUndiciParts((id) =>
      id === 'undici/lib/dispatcher/agent.js' ? class NotADispatcher {} : real(id),
    );
    assert.match(noDispatch.fallback ?? '', /agent\.js does not export a dispatcher class/);
  });
});
