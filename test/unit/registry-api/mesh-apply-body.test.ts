/** @module Unit tests of parseMeshApplyBody and withDocuments: the mesh apply body, sorted and checked. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, errors, isMeshError } from '../../../src/core/errors.js';
import {
  parseMeshApplyBody,
  withDocuments,
} from '../../../src/registry-api/native/mesh-apply-body.js';
import { meshApplyBody } from '../../helpers/mesh-arbitraries.js';

const dr = (name: string) => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name },
  spec: { host: name, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
});

const registration = { service: 'web', id: 'web-1', address: '10.0.0.1', port: 80 };

/** The problems of a refused body. */
function problemsOf(body: unknown): { document?: number; resource?: string; path: string }[] {
  try {
    parseMeshApplyBody(body);
  } catch (err) {
    assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String(err));
    return (err.details?.problems ?? []) as { document?: number; path: string }[];
  }
  return assert.fail('accepted');
}

describe('parseMeshApplyBody', () => {
  it('sorts resources and the instance set, and remembers their documents', () => {
    const r = parseMeshApplyBody({
      documents: [dr('a'), { set: 'own', services: [registration] }, dr('b')],
      set: 'fallback',
    });
    assert.deepEqual(
      r.resources.map((x) => x.metadata.name),
      ['a', 'b'],
    );
    assert.deepEqual(
      [...r.documentOf],
      [
        ['DestinationRule/default/a', 0],
        ['DestinationRule/default/b', 2],
      ],
    );
    assert.equal(r.instances?.set, 'own');
    assert.equal(r.instances?.document, 1);
    assert.equal(r.instances?.inputs[0]?.id, 'web-1');
    assert.equal(r.dryRun, false);
  });

  it("takes the request's set when the instance document has none", () => {
    const r = parseMeshApplyBody({
      documents: [{ services: [] }],
      set: 'file:/x.yaml',
      dryRun: true,
    });
    assert.equal(r.instances?.set, 'file:/x.yaml');
    assert.equal(r.dryRun, true);
  });

  it("refuses a kind the mesh does not know, and passes the parser's warnings on", () => {
    const problems = problemsOf({
      documents: [{ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: {} }],
    });
    assert.deepEqual(
      problems.map((p) => [p.document, p.path]),
      [[0, 'kind']],
    );
    const r = parseMeshApplyBody({
      documents: [
        {
          apiVersion: 'networking.istio.io/v1beta1',
          kind: 'VirtualService',
          metadata: { name: 'w' },
          spec: { http: [{ route: [{ destination: { host: 'w' }, weight: 100 }] }] },
        },
      ],
    });
    assert.ok(r.warnings.length > 0);
    for (const w of r.warnings) {
      assert.equal(w.document, 0);
      assert.equal(w.resource, 'VirtualService/default/w');
      assert.match(w.message, /^spec\./);
    }
  });

  it('collects the problems of every document, each with its document and path', () => {
    const problems = problemsOf({
      documents: [
        dr('ok'),
        'text',
        { services: [registration, { ...registration, port: 'x' }], extra: 1 },
        { services: [] },
        { neither: true },
        dr('ok'),
      ],
    });
    assert.deepEqual(
      problems.map((p) => [p.document, p.path]),
      [
        [1, ''],
        [2, 'extra'],
        [2, 'services[1].port'],
        [3, 'services'],
        [4, ''],
        [5, 'metadata.name'],
        [2, 'set'],
      ],
    );
    assert.equal(problems[5]?.resource, 'DestinationRule/default/ok');
  });

  it('names the first problem in field and message, counting the others', () => {
    assert.throws(
      () => parseMeshApplyBody({ documents: [{}, 7] }),
      (err: unknown) =>
        isMeshError(err, ERROR_CODES.VALIDATION) &&
        err.details?.field === 'documents[0]' &&
        /^documents\[0\]: neither .* \(and 1 more problems\)$/.test(err.message),
    );
  });

  it('refuses a body that is not {documents: [...]}, naming the field', () => {
    for (const [body, field] of [
      [{}, 'documents'],
      [{ documents: [], extra: 1 }, 'extra'],
      [{ documents: [], dryRun: 'yes' }, 'dryRun'],
      [{ documents: [], set: '' }, 'set'],
    ] as const) {
      assert.throws(
        () => parseMeshApplyBody(body),
        (err: unknown) => isMeshError(err, ERROR_CODES.VALIDATION) && err.details?.field === field,
        JSON.stringify(body),
      );
    }
  });

  it('throws nothing but validation errors, whatever the body', () => {
    fc.assert(
      fc.property(meshApplyBody, (b) => {
        try {
          parseMeshApplyBody(JSON.parse(JSON.stringify(b) ?? 'null'));
        } catch (err) {
          assert.ok(isMeshError(err, ERROR_CODES.VALIDATION), String((err as Error).stack));
        }
      }),
      { seed: 18, numRuns: 2000 },
    );
  });
});

describe('withDocuments', () => {
  it("maps the registry's problems to the documents their resources came from", () => {
    const refusal = errors.meshDocumentsInvalid([
      {
        resource: 'VirtualService/default/r',
        path: 'spec.http[0].route[0].destination.subset',
        reason: 'no',
      },
      { resource: 'VirtualService/default/stored', path: 'spec.http[0]', reason: 'dangles' },
    ]);
    const mapped = withDocuments(refusal, new Map([['VirtualService/default/r', 3]]));
    assert.ok(isMeshError(mapped, ERROR_CODES.VALIDATION));
    assert.equal(mapped.details?.field, 'documents[3].spec.http[0].route[0].destination.subset');
    assert.deepEqual(mapped.details?.problems, [
      {
        document: 3,
        resource: 'VirtualService/default/r',
        path: 'spec.http[0].route[0].destination.subset',
        reason: 'no',
      },
      { resource: 'VirtualService/default/stored', path: 'spec.http[0]', reason: 'dangles' },
    ]);
  });

  it('leaves other errors as they are', () => {
    const other = errors.storeUnavailable('down');
    assert.equal(withDocuments(other, new Map()), other);
    const plain = errors.validation('x', 'y');
    assert.equal(withDocuments(plain, new Map()), plain);
  });
});
