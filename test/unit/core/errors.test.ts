/**
 * docs/errors.md and core/errors.ts list the same codes, and its HTTP column the statuses the
 * mapping tables answer, in both directions.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, errors, isMeshError, MeshError } from '../../../src/core/errors.js';
import { PARSE_STATUS } from '../../../src/proxy/error-reply.js';
import { replyFor, STATUS_BY_CODE as PROXY_STATUS } from '../../../src/proxy/error-reply.js';
import { toConsulError } from '../../../src/registry-api/consul/consul-routes.js';
import {
  FASTIFY_ERRORS,
  STATUS_BY_CODE as API_STATUS,
  toHttpError,
} from '../../../src/registry-api/error-mapping.js';

const DOC = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

/** The HTTP column of docs/errors.md's table, by code, as written. */
function documentedHttp(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const m of DOC.matchAll(/^\|\s*`(MESHWORK_ERR_[A-Z_]+)`\s*\|([^|]*)\|/gm)) {
    rows.set(m[1] as string, (m[2] as string).trim());
  }
  return rows;
}

/** Every status a mapping table answers, by code (sorted, no repeats). */
function mappedStatuses(): Map<string, number[]> {
  const byCode = new Map<string, Set<number>>();
  const add = (code: string, status: number): void => {
    byCode.set(code, (byCode.get(code) ?? new Set()).add(status));
  };
  // /api/v1 (the Consul adapter's non-Consul errors go through the same table).
  for (const [code, status] of Object.entries(API_STATUS)) add(code, status as number);
  for (const { code, status } of Object.values(FASTIFY_ERRORS)) add(code, status);
  // The gateway: its table, and the parser's statuses, which it answers as PROXY_BAD_REQUEST.
  for (const [code, status] of Object.entries(PROXY_STATUS)) add(code, status);
  for (const status of Object.values(PARSE_STATUS)) add(ERROR_CODES.PROXY_BAD_REQUEST, status);
  // What both answer for an error that is no MeshError.
  const api = toHttpError(new Error('x'));
  add(api.body.error.code, api.status);
  const proxy = replyFor(new Error('x')) as { status: number; body: { error: { code: string } } };
  add(proxy.body.error.code, proxy.status);
  return new Map([...byCode].map(([code, s]) => [code, [...s].sort((a, b) => a - b)]));
}

describe('errors', () => {
  it('documents every code in docs/errors.md, and documents no other code', () => {
    const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/`(MESHWORK_ERR_[A-Z_]+)`/g)].map((m) => m[1]));
    const defined = new Set(Object.values(ERROR_CODES));
    assert.deepEqual(
      [...defined].filter((c) => !documented.has(c)),
      [],
    );
    assert.deepEqual(
      [...documented].filter((c) => !defined.has(c as never)),
      [],
    );
  });

  it('documents in the HTTP column exactly the statuses the mapping tables answer for each code', () => {
    const documented = documentedHttp();
    const mapped = mappedStatuses();
    for (const code of Object.values(ERROR_CODES)) {
      const cell = documented.get(code);
      assert.ok(cell !== undefined, `${code} has a row in docs/errors.md`);
      if (code === ERROR_CODES.CONSUL_REQUEST) continue; // its status is per refusal: below
      if (code === ERROR_CODES.PROXY_FAULT_ABORT) continue; // the route's abort status: below
      const expected = (mapped.get(code) ?? []).join(', ') || '-';
      assert.equal(cell, expected, `${code}: docs/errors.md says ${cell}, the tables ${expected}`);
    }
    for (const code of mapped.keys()) assert.ok(documented.has(code), `${code} is documented`);
  });

  it("documents PROXY_FAULT_ABORT's status as the route's (the fault's abort status)", () => {
    assert.equal(documentedHttp().get(ERROR_CODES.PROXY_FAULT_ABORT), "the route's");
    assert.equal(mappedStatuses().has(ERROR_CODES.PROXY_FAULT_ABORT), false);
  });

  it("documents CONSUL_REQUEST's status as Consul's, the one its refusal carries", () => {
    assert.equal(documentedHttp().get(ERROR_CODES.CONSUL_REQUEST), "Consul's");
    assert.equal(mappedStatuses().has(ERROR_CODES.CONSUL_REQUEST), false);
    assert.equal(toConsulError(errors.consulRequest(401, 'ACL support disabled')).status, 401);
    assert.equal(toConsulError(errors.consulRequest(500, 'No path to datacenter')).status, 500);
  });

  it('recognises MeshErrors by brand and code, not by instanceof', () => {
    const e = errors.instanceNotFound('x');
    assert.ok(isMeshError(e));
    assert.ok(isMeshError(e, ERROR_CODES.INSTANCE_NOT_FOUND));
    assert.ok(!isMeshError(e, ERROR_CODES.VALIDATION));
    assert.ok(!isMeshError(new Error('x')));
    const copy = Object.assign(Object.create(null), e) as unknown;
    assert.ok(isMeshError(copy), 'an error from another copy of the package still counts');
  });

  it('marks store unavailability and timeouts retryable, validation not', () => {
    assert.equal(errors.storeUnavailable('down').retryable, true);
    assert.equal(errors.timeout('probe', 10).retryable, true);
    assert.equal(errors.validation('port', 'bad').retryable, false);
    assert.ok(errors.validation('port', 'bad') instanceof MeshError);
    assert.equal(errors.validation('port', 'bad').details?.field, 'port');
  });
});
