/** Consul query parameters: blocking, consistency, bools, browser markers. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkReadOptions,
  CONSUL_DEFAULT_WAIT_MS,
  fromBrowser,
  parseBoolParam,
  parseConsulBlocking,
  parseEnable,
} from '../../../../src/registry-api/consul/consul-query.js';

const refused = (fn: () => unknown, text: RegExp) =>
  assert.throws(fn, (e: unknown) => text.test((e as Error).message));

describe('parseConsulBlocking', () => {
  it('takes index and a Go wait, defaulting wait to 5 minutes', () => {
    assert.deepEqual(parseConsulBlocking({}), { index: 0, waitMs: CONSUL_DEFAULT_WAIT_MS });
    assert.deepEqual(parseConsulBlocking({ index: '12', wait: '30s' }), {
      index: 12,
      waitMs: 30_000,
    });
    assert.deepEqual(parseConsulBlocking({ index: '1', wait: '0' }).waitMs, CONSUL_DEFAULT_WAIT_MS);
    refused(() => parseConsulBlocking({ index: '-1' }), /^Invalid index$/);
    refused(() => parseConsulBlocking({ index: '1', wait: '30' }), /^Invalid wait time$/);
    refused(() => parseConsulBlocking({ index: '1', wait: 'soon' }), /^Invalid wait time$/);
  });
});

describe('checkReadOptions', () => {
  it('refuses conflicting consistency flags, other datacenters and namespaces', () => {
    checkReadOptions({ stale: '' }, 'dc1');
    checkReadOptions({ dc: 'dc1', ns: 'default' }, 'dc1');
    refused(() => checkReadOptions({ stale: '', consistent: '' }, 'dc1'), /conflicting semantics/);
    refused(() => checkReadOptions({ cached: '', consistent: '' }, 'dc1'), /conflicting semantics/);
    refused(() => checkReadOptions({ max_stale: 'x' }, 'dc1'), /^Invalid max_stale value "x"$/);
    refused(() => checkReadOptions({ dc: 'dc2' }, 'dc1'), /^No path to datacenter$/);
    refused(
      () => checkReadOptions({ ns: 'team' }, 'dc1'),
      /Namespaces are a Consul Enterprise feature/,
    );
  });
});

describe('parseBoolParam and parseEnable', () => {
  it('read Go bools, presence meaning true for ?passing', () => {
    assert.equal(parseBoolParam({}, 'passing'), false);
    assert.equal(parseBoolParam({ passing: '' }, 'passing'), true);
    assert.equal(parseBoolParam({ passing: '1' }, 'passing'), true);
    assert.equal(parseBoolParam({ passing: 'False' }, 'passing'), false);
    refused(() => parseBoolParam({ passing: 'yes' }, 'passing'), /^Invalid value for \?passing$/);
    assert.equal(parseEnable({ enable: 'true' }), true);
    assert.equal(parseEnable({ enable: '0' }), false);
    refused(() => parseEnable({}), /^Missing value for enable$/);
    refused(() => parseEnable({ enable: 'on' }), /^Invalid value for enable: "on"$/);
  });
});

describe('fromBrowser', () => {
  it('spots Origin and cross-site or same-site Sec-Fetch-Site, not command-line clients', () => {
    assert.equal(fromBrowser({}), false);
    assert.equal(fromBrowser({ 'sec-fetch-site': 'none' }), false);
    assert.equal(fromBrowser({ 'sec-fetch-site': 'same-origin' }), false);
    assert.equal(fromBrowser({ 'sec-fetch-site': 'cross-site' }), true);
    assert.equal(fromBrowser({ 'sec-fetch-site': 'same-site' }), true);
    assert.equal(fromBrowser({ origin: 'http://localhost:3000' }), true);
  });
});
