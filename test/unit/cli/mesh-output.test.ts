/** @module Unit tests of what the mesh commands print: labels, YAML, the line diff, problems. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parse } from 'yaml';
import {
  lineDiff,
  problemLine,
  resourceLabel,
  resourcesYaml,
  resourceTable,
} from '../../../src/cli/mesh-output.js';
import type { MeshResource, StoredMeshResource } from '../../../src/protocol/mesh/resource.js';

const vs = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  metadata: { name: 'usuario-service-canary', namespace: 'default' },
  spec: {
    hosts: ['usuario-service'],
    http: [{ route: [{ destination: { host: 'usuario-service' } }] }],
  },
} as unknown as MeshResource;

describe('resourceLabel', () => {
  it('spells a key as kubectl does: lower-case kind, group, namespace, name', () => {
    assert.equal(
      resourceLabel('VirtualService/default/usuario-service-canary'),
      'virtualservice.networking.istio.io/default/usuario-service-canary',
    );
    assert.equal(resourceLabel('RetryBudget/shop/rb'), 'retrybudget.meshwork.dev/shop/rb');
  });

  it('leaves a key of no known kind as it is', () => {
    assert.equal(resourceLabel('Gateway/default/x'), 'Gateway/default/x');
  });
});

describe('resourcesYaml', () => {
  it('prints documents that parse back to the resources', () => {
    const text = resourcesYaml([vs, vs]);
    assert.match(text, /^---\napiVersion: networking\.istio\.io\/v1beta1\nkind: VirtualService\n/);
    const docs = text
      .split(/^---\n/m)
      .filter((d) => d !== '')
      .map((d) => parse(d) as unknown);
    assert.deepEqual(docs, [vs, vs]);
  });
});

describe('resourceTable', () => {
  it('has NAME, NAMESPACE, CREATED-INDEX and MODIFIED-INDEX', () => {
    const stored: StoredMeshResource = { resource: vs, createIndex: 7, modifyIndex: 12 };
    assert.equal(
      resourceTable([stored]),
      'NAME                    NAMESPACE  CREATED-INDEX  MODIFIED-INDEX\n' +
        'usuario-service-canary  default    7              12\n',
    );
  });
});

describe('lineDiff', () => {
  const labels = { from: 'a (stored)', to: 'a (file)' };

  it('is empty when nothing changed', () => {
    assert.equal(lineDiff('x\ny\n', 'x\ny\n', labels), '');
  });

  it('shows a new resource as all + lines', () => {
    assert.equal(
      lineDiff(undefined, 'x\ny\n', labels),
      '--- /dev/null\n+++ a (file)\n@@ -0,0 +1,2 @@\n+x\n+y\n',
    );
  });

  it('shows a change with three lines of context, in unified hunks', () => {
    const before =
      ['a', 'b', 'c', 'd', 'e', 'weight: 20', 'f', 'g', 'h', 'i', 'j'].join('\n') + '\n';
    const after = before.replace('weight: 20', 'weight: 30');
    assert.equal(
      lineDiff(before, after, labels),
      [
        '--- a (stored)',
        '+++ a (file)',
        '@@ -3,7 +3,7 @@',
        ' c',
        ' d',
        ' e',
        '-weight: 20',
        '+weight: 30',
        ' f',
        ' g',
        ' h',
        '',
      ].join('\n'),
    );
  });

  it('splits changes far apart into separate hunks', () => {
    const lines = Array.from({ length: 30 }, (_, i) => `l${i}`);
    const after = lines.map((l) => (l === 'l2' || l === 'l25' ? `${l}!` : l));
    const diff = lineDiff(lines.join('\n'), after.join('\n'), labels);
    assert.deepEqual(
      diff.split('\n').filter((l) => l.startsWith('@@')),
      ['@@ -1,6 +1,6 @@', '@@ -23,7 +23,7 @@'],
    );
  });

  it('keeps both texts: context and - lines give the old, context and + lines the new', () => {
    const text = fc.array(fc.constantFrom('a', 'b', 'c', 'weight: 1', 'weight: 2', ''), {
      maxLength: 25,
    });
    fc.assert(
      fc.property(text, text, (a, b) => {
        const before = a.map((l) => `${l}\n`).join('');
        const after = b.map((l) => `${l}\n`).join('');
        const diff = lineDiff(before, after, labels, Number.MAX_SAFE_INTEGER);
        if (before === after) return assert.equal(diff, '');
        const body = diff.split('\n').slice(3, -1);
        const old = body.filter((l) => !l.startsWith('+')).map((l) => l.slice(1));
        const now = body.filter((l) => !l.startsWith('-')).map((l) => l.slice(1));
        assert.deepEqual(old, a);
        assert.deepEqual(now, b);
      }),
      { seed: 18, numRuns: 300 },
    );
  });
});

describe('problemLine', () => {
  it('names the file, the document, the resource, the path and the reason', () => {
    assert.equal(
      problemLine('mesh.yaml', {
        number: 2,
        resource: 'VirtualService/default/r',
        path: 'spec.http[0].route[1].weight',
        reason: 'must be 0..100',
      }),
      'mesh.yaml: document 2 (VirtualService/default/r): spec.http[0].route[1].weight: must be 0..100',
    );
  });

  it('names a stored resource the apply would break, and a document without a path', () => {
    assert.equal(
      problemLine('m.yaml', {
        resource: 'VirtualService/default/r',
        path: 'spec.x',
        reason: 'why',
      }),
      'm.yaml: VirtualService/default/r (stored): spec.x: why',
    );
    assert.equal(
      problemLine('m.yaml', { number: 1, path: '', reason: 'why' }),
      'm.yaml: document 1: why',
    );
  });
});
