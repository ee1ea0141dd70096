/** Property tests of the push protocol's parsers: the ACK body and the stream query. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bodyTexts, refusalOrValue } from '../../../helpers/body-refusal.js';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import { MAX_NACK_ERROR_CHARS, parsePushAck } from '../../../../src/control-plane/push/ack-body.js';
import { parseStreamQuery } from '../../../../src/control-plane/push/stream-query.js';
import { hasControlChars } from '../../../../src/protocol/validation.js';

const SEED = 18;
const name = fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !hasControlChars(s));

describe('parsePushAck', () => {
  it('round-trips every ACK and NACK', () => {
    fc.assert(
      fc.property(
        name,
        name,
        fc.option(fc.string({ minLength: 1, maxLength: MAX_NACK_ERROR_CHARS }), { nil: undefined }),
        (id, version, error) => {
          const ack = error === undefined ? { id, version } : { id, version, error };
          assert.deepEqual(parsePushAck(Buffer.from(JSON.stringify(ack))), ack);
          assert.deepEqual(
            parsePushAck(JSON.stringify(ack), 'application/json; charset=utf-8'),
            ack,
          );
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('answers any bytes with a PushAck or a refusal naming the field, never anything else', () => {
    fc.assert(
      fc.property(
        bodyTexts(
          fc.record(
            {
              id: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
              version: fc.oneof(fc.string(), fc.boolean()),
              error: fc.oneof(fc.string({ maxLength: 5000 }), fc.integer()),
              extra: fc.anything(),
            },
            { requiredKeys: [] },
          ),
        ),
        (text) => {
          const ack = refusalOrValue(() => parsePushAck(text));
          if (ack === undefined) return;
          assert.equal(typeof ack.id, 'string');
          assert.ok(ack.id.length > 0 && ack.version.length > 0);
          assert.ok(ack.error === undefined || ack.error.length <= MAX_NACK_ERROR_CHARS);
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('names the offending field', () => {
    const field = (text: string): unknown => {
      try {
        parsePushAck(text);
      } catch (err) {
        return isMeshError(err) ? err.details?.field : err;
      }
      return 'accepted';
    };
    assert.equal(field('{"version":"v1"}'), 'id');
    assert.equal(field('{"id":"a","version":"v1","error":""}'), 'error');
    assert.equal(field('{"id":"a","version":"v1","nack":true}'), 'nack');
    assert.equal(field('{"id":"a","version":"v1","__proto__":{}}'), '__proto__');
    assert.throws(() => parsePushAck('{}', 'text/html'), {
      code: ERROR_CODES.UNSUPPORTED_MEDIA_TYPE,
    });
    assert.throws(() => parsePushAck(''), { code: ERROR_CODES.MALFORMED_BODY });
  });
});

describe('parseStreamQuery', () => {
  it('round-trips every identity', () => {
    fc.assert(
      fc.property(
        name,
        fc.constantFrom('gateway', 'sidecar'),
        name,
        fc.option(name, { nil: undefined }),
        fc.option(
          fc.uniqueArray(
            name.filter((s) => !s.includes(',') && s.trim() === s),
            { maxLength: 5 },
          ),
          {
            nil: undefined,
          },
        ),
        fc.option(name, { nil: undefined }),
        (id, kind, proxyName, namespace, upstreams, version) => {
          const q: Record<string, string> = { id, kind, name: proxyName };
          if (namespace !== undefined) q.namespace = namespace;
          if (upstreams !== undefined) q.upstreams = upstreams.join(',');
          if (version !== undefined) q.version = version;
          const r = parseStreamQuery(q);
          assert.deepEqual(r.proxy, {
            id,
            kind,
            name: proxyName,
            namespace: namespace ?? 'default',
            ...(upstreams === undefined ? {} : { upstreams }),
          });
          assert.equal(r.version, version);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('answers any query with a request or a refusal naming the parameter', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom('id', 'kind', 'name', 'namespace', 'upstreams', 'version', 'other'),
          fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 2 }), fc.constant('gateway')),
        ),
        (q) => {
          const r = refusalOrValue(() => parseStreamQuery(q));
          if (r === undefined) return;
          assert.ok(r.proxy.id.length > 0 && r.proxy.name.length > 0);
          assert.ok(r.proxy.upstreams?.every((u) => u !== '') ?? true);
        },
      ),
      { seed: SEED, numRuns: 2000 },
    );
  });
});
