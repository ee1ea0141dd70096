/** Unit tests of prepared query definitions: parse, resolve, render (issue 22). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import {
  parsePreparedQuery,
  renderPreparedQuery,
  resolvePreparedQuery,
} from '../../../../src/registry-api/consul/consul-prepared-query.js';

const parse = (body: unknown, id = 'id-1') =>
  parsePreparedQuery(Buffer.from(JSON.stringify(body)), id);

describe('parsePreparedQuery', () => {
  it('reads Consul field names case-insensitively, with defaults', () => {
    const q = parse({ name: 'db', service: { service: 'pg', tags: ['!x'], onlypassing: true } });
    assert.equal(q.ID, 'id-1');
    assert.deepEqual(q.Service.Tags, ['!x']);
    assert.equal(q.Service.OnlyPassing, true);
    assert.deepEqual(q.Service.Failover, { NearestN: 0, Datacenters: [] });
    assert.deepEqual(q.Template, { Type: '', Regexp: '', RemoveEmptyTags: false });
  });

  it('answers any JSON body with a definition or a 400 naming the problem', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        try {
          const q = parse(body);
          return q.Service.Service !== '' && (q.Name !== '' || q.Template.Type !== '');
        } catch (err) {
          return (
            isMeshError(err, ERROR_CODES.CONSUL_REQUEST) &&
            err.details?.status === 400 &&
            /^(Invalid prepared query: |Request decode failed: )/.test(err.message)
          );
        }
      }),
    );
  });
});

describe('resolvePreparedQuery and renderPreparedQuery', () => {
  const plain = parse({ Name: 'geo-db', Service: { Service: 'pg' } }, 'id-plain');
  const short = parse(
    { Name: 'geo-', Template: { Type: 'name_prefix_match' }, Service: { Service: 'x' } },
    'id-short',
  );
  const long = parse(
    {
      Name: 'geo-d',
      Template: { Type: 'name_prefix_match', Regexp: '^geo-(d)(.*)$', RemoveEmptyTags: true },
      Service: { Service: '${match(2)}', Tags: ['${name.prefix}', '${match(9)}'] },
    },
    'id-long',
  );
  const all = [plain, short, long];

  it('resolves by ID, then exact name, then the longest template prefix', () => {
    assert.equal(resolvePreparedQuery(all, 'id-short'), short);
    assert.equal(resolvePreparedQuery(all, 'geo-db'), plain);
    assert.equal(resolvePreparedQuery(all, 'geo-dx'), long);
    assert.equal(resolvePreparedQuery(all, 'geo-a'), short);
    assert.equal(resolvePreparedQuery(all, 'other'), undefined);
  });

  it('renders name and match variables, dropping empty tags when asked', () => {
    const r = renderPreparedQuery(long, 'geo-dpostgres');
    assert.equal(r.Service.Service, 'postgres');
    assert.deepEqual(r.Service.Tags, ['geo-d']);
    assert.equal(renderPreparedQuery(plain, 'geo-db'), plain);
  });
});
