/** Unit tests of the /v1/txn body parser (issue 22). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import {
  CONSUL_MAX_TXN_OPS,
  parseConsulTxn,
  type ConsulTxnContext,
} from '../../../../src/registry-api/consul/consul-txn.js';

const ctx: ConsulTxnContext = {
  node: { nodeName: 'n1', address: '127.0.0.1', datacenter: 'dc1' },
  maxValueBytes: 64,
};

/** The status of the Consul refusal `f` throws, or 'ok'. */
function outcome(f: () => unknown): number | 'ok' {
  try {
    f();
    return 'ok';
  } catch (err) {
    if (isMeshError(err, ERROR_CODES.CONSUL_REQUEST)) return err.details?.status as number;
    throw err;
  }
}

const kvOp = fc.record({
  Verb: fc.constantFrom('set', 'cas', 'get', 'get-tree', 'delete', 'check-index', 'lock', 'zap'),
  Key: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('a\u0000b', 'x\u0085', '')),
  Value: fc.option(fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('base64'))),
  Index: fc.nat(1000),
});

describe('parseConsulTxn', () => {
  it('turns KV ops into registry ops with their ACL needs, base64 values decoded', () => {
    const [set, get] = parseConsulTxn(
      [
        { kv: { verb: 'set', key: 'a/b', value: Buffer.from('hi').toString('base64'), flags: 3 } },
        { KV: { Verb: 'get', Key: 'a/b' } },
      ],
      ctx,
    );
    assert.deepEqual(set, {
      kind: 'registry',
      op: { type: 'kv', verb: 'set', key: 'a/b', flags: 3, index: 0, value: Buffer.from('hi') },
      acl: [['kv', 'a/b', 'write']],
    });
    assert.deepEqual(get?.kind === 'registry' ? get.acl : [], [['kv', 'a/b', 'read']]);
  });

  it('refuses more than 64 ops with 413, and anything but an array with 400', () => {
    const op = { KV: { Verb: 'get', Key: 'k' } };
    assert.equal(
      outcome(() => parseConsulTxn(Array(CONSUL_MAX_TXN_OPS).fill(op), ctx)),
      'ok',
    );
    assert.equal(
      outcome(() => parseConsulTxn(Array(CONSUL_MAX_TXN_OPS + 1).fill(op), ctx)),
      413,
    );
    assert.equal(
      outcome(() => parseConsulTxn({ KV: op.KV }, ctx)),
      400,
    );
  });

  it('answers any array of KV ops with one op each, or a 400/413 refusal, never a crash', () => {
    fc.assert(
      fc.property(fc.array(kvOp, { maxLength: 70 }), (ops) => {
        const r = outcome(() =>
          parseConsulTxn(
            ops.map((KV) => ({ KV })),
            ctx,
          ),
        );
        if (ops.length > CONSUL_MAX_TXN_OPS) return r === 413;
        const tooBig = ops.some(
          (o) => o.Value !== null && Buffer.from(o.Value, 'base64').length > ctx.maxValueBytes,
        );
        if (tooBig) return r === 413;
        if (r !== 'ok') return false;
        const parsed = parseConsulTxn(
          ops.map((KV) => ({ KV })),
          ctx,
        );
        return (
          parsed.length === ops.length &&
          parsed.every((p, i) => {
            const o = ops[i]!;
            if (p.kind !== 'registry') return false;
            const runs =
              ['set', 'cas', 'get', 'get-tree', 'delete', 'check-index'].includes(o.Verb) &&
              (o.Key !== '' || o.Verb === 'get-tree') &&
              ![...o.Key].some(
                (ch) => ch.charCodeAt(0) < 0x20 || (ch >= '\u007f' && ch <= '\u009f'),
              );
            return runs ? p.op.type === 'kv' && p.op.key === o.Key : p.op.type === 'refused';
          })
        );
      }),
    );
  });

  it('answers arbitrary JSON with ops or a 400, never a crash', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (body) => {
        const r = outcome(() => parseConsulTxn(body, ctx));
        return r === 'ok' || r === 400 || r === 413;
      }),
    );
  });

  it('takes Service ops on its own node only, and refuses Node and Check writes per op', () => {
    const ops = parseConsulTxn(
      [
        { Service: { Verb: 'set', Node: 'n1', Service: { Service: 'web', Port: 80 } } },
        { Service: { Verb: 'get', Node: 'other', Service: { ID: 'web' } } },
        { Node: { Verb: 'get', Node: { Node: 'n1' } } },
        { Node: { Verb: 'delete', Node: { Node: 'n1' } } },
        { Check: { Verb: 'get', Check: { Node: 'n1', CheckID: 'serfHealth' } } },
        {},
      ],
      ctx,
    );
    assert.equal(ops[0]?.kind === 'registry' && ops[0].op.type, 'instance');
    assert.deepEqual(ops[1], {
      kind: 'registry',
      op: { type: 'refused', what: 'service "web" on node "other" doesn\'t exist' },
      acl: [],
    });
    assert.deepEqual(ops[2], { kind: 'node-get' });
    assert.match(
      ops[3]?.kind === 'registry' && ops[3].op.type === 'refused' ? ops[3].op.what : '',
      /not supported/,
    );
    assert.deepEqual(ops[4], { kind: 'check-get', checkId: 'serfHealth' });
    assert.deepEqual(ops[5], {
      kind: 'registry',
      op: { type: 'refused', what: 'no operation specified' },
      acl: [],
    });
  });
});
