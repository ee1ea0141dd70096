/**
 * @module RegistryClient's mesh CA calls (issue 20): `caRoots()` and `caSignLeaf()` on their paths,
 * the token sent as `X-Consul-Token` (and no header without one), and the agent's errors (404:
 * no CA; 403: a token that may not write the service) as MeshErrors with the status.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { isMeshError } from '../../../src/core/errors.js';
import { RegistryClient } from '../../../src/client/registry-client.js';
import { CA_LEAF_PATH, CA_ROOTS_PATH } from '../../../src/protocol/mesh/ca.js';

interface Seen {
  method: string;
  url: string;
  token: string | undefined;
  body: string;
}

/** An agent stand-in answering `reply` and recording each request. */
async function agent(reply: (req: IncomingMessage, body: string) => [number, unknown]) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        token: req.headers['x-consul-token'] as string | undefined,
        body,
      });
      const [status, out] = reply(req, body);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { seen, url, close: () => new Promise((r) => server.close(r)) };
}

const ROOTS = {
  trustDomain: 'cluster.local',
  activeRootId: 'ab',
  roots: [],
  bundlePem: 'PEM',
};

describe('RegistryClient mesh CA calls', () => {
  it('GETs the roots and POSTs a CSR, with the token as X-Consul-Token', async () => {
    const a = await agent((req) =>
      req.url === CA_ROOTS_PATH ? [200, ROOTS] : [200, { certPem: 'C', rootId: 'ab' }],
    );
    const client = new RegistryClient({ addresses: [a.url], token: 's3cret' });
    assert.deepEqual(await client.caRoots(), ROOTS);
    const leaf = await client.caSignLeaf({ csr: 'CSR', service: 'orders', namespace: 'shop' });
    assert.equal(leaf.certPem, 'C');
    assert.deepEqual(
      a.seen.map((s) => [s.method, s.url, s.token]),
      [
        ['GET', CA_ROOTS_PATH, 's3cret'],
        ['POST', CA_LEAF_PATH, 's3cret'],
      ],
    );
    assert.deepEqual(JSON.parse(a.seen[1]!.body), {
      csr: 'CSR',
      service: 'orders',
      namespace: 'shop',
    });
    await client.close();
    await a.close();
  });

  it('sends no token header without a token (or with an empty one)', async () => {
    const a = await agent(() => [200, ROOTS]);
    for (const token of [undefined, '']) {
      const client = new RegistryClient({
        addresses: [a.url],
        ...(token === undefined ? {} : { token }),
      });
      await client.caRoots();
      await client.close();
    }
    assert.deepEqual(
      a.seen.map((s) => s.token),
      [undefined, undefined],
    );
    await a.close();
  });

  it('rejects with the status: 404 (no CA) and 403 (the missing permission named)', async () => {
    const a = await agent((req) =>
      req.url === CA_ROOTS_PATH
        ? [404, { error: { code: 'MESHWORK_ERR_API_ROUTE_NOT_FOUND', message: 'not found' } }]
        : [403, { error: { code: 'MESHWORK_ERR_INTERNAL', message: 'service:orders write' } }],
    );
    const client = new RegistryClient({ addresses: [a.url] });
    await assert.rejects(
      client.caRoots(),
      (err: unknown) => isMeshError(err) && err.details?.status === 404,
    );
    await assert.rejects(
      client.caSignLeaf({ csr: 'x', service: 'orders' }),
      (err: unknown) =>
        isMeshError(err) && err.details?.status === 403 && /service:orders write/.test(err.message),
    );
    await client.close();
    await a.close();
  });
});
