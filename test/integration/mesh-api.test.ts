/**
 * The mesh endpoints of the native API (`/api/v1/mesh/...`) over real HTTP on a real agent:
 * apply all or nothing with every problem named by its document and path, reads and blocking
 * queries on the `mesh` topic, deletes, and arbitrary bodies never answered with a 5xx.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createRegistryClient } from '../../src/client/registry-client.js';
import { ERROR_CODES, isMeshError } from '../../src/core/errors.js';
import { http, useTestAgent } from '../helpers/agent.js';
import { meshApplyBody } from '../helpers/mesh-arbitraries.js';

const dr = (name: string, host: string, subsets: string[]) => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name },
  spec: { host, subsets: subsets.map((s) => ({ name: s, labels: { version: s } })) },
});

const vs = (name: string, host: string, route: { subset: string; weight: unknown }[]) => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  metadata: { name },
  spec: {
    hosts: [host],
    http: [
      { route: route.map((r) => ({ destination: { host, subset: r.subset }, weight: r.weight })) },
    ],
  },
});

const instances = (set: string, service: string) => ({
  set,
  services: [
    { service, id: `${service}-1`, address: '10.0.0.1', port: 80, meta: { version: 'v1' } },
  ],
});

describe('mesh API', () => {
  const agent = useTestAgent();
  const url = () => agent().url;
  const list = async (path = '/api/v1/mesh/resources') => (await http(url(), 'GET', path)).body;

  it('applies resources and instances in one commit and reads them back', async () => {
    const r = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [
        dr('ratings', 'ratings', ['v1', 'v2']),
        vs('ratings', 'ratings', [
          { subset: 'v1', weight: 90 },
          { subset: 'v2', weight: 10 },
        ]),
        instances('ratings-set', 'ratings'),
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.dryRun, false);
    assert.deepEqual(
      r.body.resources.map((c: { key: string; action: string }) => [c.key, c.action]),
      [
        ['DestinationRule/default/ratings', 'created'],
        ['VirtualService/default/ratings', 'created'],
      ],
    );
    assert.deepEqual(r.body.instances.created, ['ratings-1']);
    assert.equal(r.body.instances.index, r.body.index);
    assert.equal(r.headers['x-meshwork-index'], String(r.body.index));

    const one = await http(url(), 'GET', '/api/v1/mesh/resources/vs/default/ratings');
    assert.equal(one.status, 200, one.text);
    assert.equal(one.body.resource.resource.kind, 'VirtualService');
    assert.equal(one.body.resource.createIndex, r.body.index);
    const byKind = await list('/api/v1/mesh/resources/destinationrules?namespace=default');
    assert.deepEqual(
      byKind.resources.map(
        (s: { resource: { metadata: { name: string } } }) => s.resource.metadata.name,
      ),
      ['ratings'],
    );
    assert.deepEqual((await list('/api/v1/mesh/resources?namespace=elsewhere')).resources, []);

    const again = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [dr('ratings', 'ratings', ['v1', 'v2'])],
    });
    assert.equal(again.body.resources[0].action, 'unchanged');
  });

  it('refuses every bad document at once, naming document and path, and stores nothing', async () => {
    const before = await list();
    const r = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [
        dr('good', 'good', ['v1']),
        vs('bad-weight', 'good', [
          { subset: 'v1', weight: 50 },
          { subset: 'v1', weight: 'half' },
        ]),
        instances('bad-set', 'good'),
        { services: [{ service: 'good', address: '10.0.0.2', port: 'eighty' }] },
        42,
      ],
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error.code, 'MESHWORK_ERR_API_VALIDATION');
    assert.equal(r.body.error.field, 'documents[1].spec.http[0].route[1].weight');
    const problems = r.body.error.details.problems as {
      document: number;
      resource?: string;
      path: string;
    }[];
    assert.deepEqual(problems[0], {
      ...problems[0],
      document: 1,
      resource: 'VirtualService/default/bad-weight',
      path: 'spec.http[0].route[1].weight',
    });
    assert.deepEqual([...new Set(problems.map((p) => p.document))], [1, 3, 4]);
    assert.match(
      r.body.error.message,
      /^documents\[1\]\.spec\.http\[0\]\.route\[1\]\.weight: .+ \(and \d+ more problems\)$/,
    );
    assert.deepEqual(await list(), before, 'nothing stored, the index unchanged');
    const inst = await http(url(), 'GET', '/api/v1/services/good/instances');
    assert.deepEqual(inst.body.instances, []);
  });

  it('refuses a route to a subset no DestinationRule defines, with its path', async () => {
    const r = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [
        instances('orphan-set', 'orphan'),
        dr('orphan', 'orphan', ['v1']),
        vs('orphan', 'orphan', [
          { subset: 'v1', weight: 50 },
          { subset: 'v3', weight: 50 },
        ]),
      ],
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error.field, 'documents[2].spec.http[0].route[1].destination.subset');
    assert.equal(r.body.error.details.problems[0].resource, 'VirtualService/default/orphan');
    assert.match(r.body.error.message, /"v3"/);
    const gone = await http(url(), 'GET', '/api/v1/mesh/resources/dr/default/orphan');
    assert.equal(gone.status, 404);
    assert.equal(gone.body.error.code, 'MESHWORK_ERR_REGISTRY_MESH_RESOURCE_NOT_FOUND');
  });

  it('refuses a change that would leave a stored route dangling, naming the stored resource', async () => {
    const put = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [
        dr('stay', 'stay', ['v1', 'v2']),
        vs('stay', 'stay', [
          { subset: 'v1', weight: 50 },
          { subset: 'v2', weight: 50 },
        ]),
      ],
    });
    assert.equal(put.status, 200, put.text);
    const r = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [dr('stay', 'stay', ['v1'])],
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(
      r.body.error.field,
      'VirtualService/default/stay: spec.http[0].route[1].destination.subset',
    );
    assert.deepEqual(r.body.error.details.problems, [
      {
        resource: 'VirtualService/default/stay',
        path: 'spec.http[0].route[1].destination.subset',
        reason: r.body.error.details.problems[0].reason,
      },
    ]);
    const kept = await http(url(), 'GET', '/api/v1/mesh/resources/dr/default/stay');
    assert.equal(kept.body.resource.resource.spec.subsets.length, 2);
  });

  it('stores nothing on a dry run, and answers what would change', async () => {
    const before = await list();
    const r = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [dr('dry', 'dry', ['v1']), instances('dry-set', 'dry')],
      dryRun: true,
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.dryRun, true);
    assert.equal(r.body.resources[0].action, 'created');
    assert.deepEqual(r.body.instances.created, ['dry-1']);
    assert.deepEqual(await list(), before);
    assert.deepEqual(
      (await http(url(), 'GET', '/api/v1/services/dry/instances')).body.instances,
      [],
    );
  });

  it('answers 404 naming the kinds for a word that is no kind', async () => {
    const r = await http(url(), 'GET', '/api/v1/mesh/resources/gateways');
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'MESHWORK_ERR_API_ROUTE_NOT_FOUND');
    assert.match(
      r.body.error.message,
      /"gateways".*virtualservices, destinationrules, serviceentries/,
    );
    const d = await http(url(), 'DELETE', '/api/v1/mesh/resources/pods/default/x');
    assert.equal(d.status, 404);
    for (const word of ['VirtualService', 'virtualservice', 'vs', 'virtualservices']) {
      assert.equal((await http(url(), 'GET', `/api/v1/mesh/resources/${word}`)).status, 200, word);
    }
  });

  it('wakes a blocking query on a resource change, and not before', async () => {
    const start = await list();
    const waiting = http(url(), 'GET', `/api/v1/mesh/resources?index=${start.index}&wait=20s`);
    const byKind = http(
      url(),
      'GET',
      `/api/v1/mesh/resources/retrybudgets?index=${start.index}&wait=20s`,
    );
    // An instance change is no mesh change: the query keeps waiting through it.
    const reg = await http(url(), 'PUT', '/api/v1/instances', {
      service: 'bystander',
      address: '10.0.0.9',
      port: 1,
    });
    assert.equal(reg.status, 200);
    const applied = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [dr('wake', 'wake', ['v1'])],
    });
    assert.equal(applied.status, 200, applied.text);
    const woke = await waiting;
    assert.equal(woke.status, 200);
    assert.equal(woke.body.index, applied.body.index);
    assert.equal(woke.headers['x-meshwork-index'], String(applied.body.index));
    assert.ok(
      woke.body.resources.some(
        (s: { resource: { metadata: { name: string } } }) => s.resource.metadata.name === 'wake',
      ),
    );
    assert.equal((await byKind).body.index, applied.body.index);
  });

  it('deletes a resource, refusing while another refers to it', async () => {
    const put = await http(url(), 'POST', '/api/v1/mesh/apply', {
      documents: [
        dr('reviews', 'reviews', ['v1']),
        vs('reviews', 'reviews', [{ subset: 'v1', weight: 100 }]),
      ],
    });
    assert.equal(put.status, 200, put.text);
    const refused = await http(
      url(),
      'DELETE',
      '/api/v1/mesh/resources/destinationrules/default/reviews',
    );
    assert.ok(refused.status === 400 || refused.status === 409, refused.text);
    assert.match(refused.body.error.message, /VirtualService\/default\/reviews/);
    const vsGone = await http(
      url(),
      'DELETE',
      '/api/v1/mesh/resources/virtualservices/default/reviews',
    );
    assert.equal(vsGone.status, 200, vsGone.text);
    assert.deepEqual(vsGone.body, { index: vsGone.body.index, deleted: true });
    const drGone = await http(url(), 'DELETE', '/api/v1/mesh/resources/dr/default/reviews');
    assert.equal(drGone.body.deleted, true);
    const again = await http(url(), 'DELETE', '/api/v1/mesh/resources/dr/default/reviews');
    assert.equal(again.status, 200);
    assert.equal(again.body.deleted, false);
  });

  it('serves the SDK client: apply, refusals with every problem, blocking list, read, delete', async () => {
    const client = createRegistryClient({ addresses: [url()] });
    try {
      const refused = await client
        .meshApply({ documents: [vs('sdk', 'sdk', [{ subset: 'v1', weight: 100 }])] })
        .then(
          () => assert.fail('accepted'),
          (err: unknown) => err,
        );
      assert.ok(isMeshError(refused, ERROR_CODES.VALIDATION));
      assert.equal(refused.details?.field, 'documents[0].spec.http[0].route[0].destination.subset');
      assert.deepEqual(
        (refused.details?.problems as { document: number }[]).map((p) => p.document),
        [0],
      );

      const start = await client.meshResources({ kind: 'destinationrules' });
      const waiting = client.meshResources({ kind: 'dr', index: start.index, waitMs: 20_000 });
      const applied = await client.meshApply({ documents: [dr('sdk', 'sdk', ['v1'])], set: 'x' });
      assert.deepEqual(
        applied.resources.map((c) => [c.key, c.action]),
        [['DestinationRule/default/sdk', 'created']],
      );
      assert.equal((await waiting).index, applied.index);

      const one = await client.meshResource('destinationrules', 'default', 'sdk');
      assert.equal(one.resource.modifyIndex, applied.index);
      const missing = await client.meshResource('dr', 'default', 'nope').then(
        () => assert.fail('found'),
        (err: unknown) => err,
      );
      assert.ok(isMeshError(missing, ERROR_CODES.MESH_RESOURCE_NOT_FOUND));
      const deleted = await client.meshDelete('dr', 'default', 'sdk');
      assert.equal(deleted.deleted, true);
      assert.ok(deleted.index > applied.index);
    } finally {
      await client.close();
    }
  });

  it('never answers an arbitrary apply body with a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(meshApplyBody, async (b) => {
        const text = JSON.stringify(b) ?? 'null';
        const r = await http(url(), 'POST', '/api/v1/mesh/apply', text, {
          'content-type': 'application/json',
        });
        assert.ok(r.status < 500, `${r.status} ${r.text} for ${text}`);
        if (r.status >= 400) assert.match(r.body.error.code, /^MESHWORK_ERR_/);
      }),
      { seed: 18, numRuns: 300 },
    );
  });
});
