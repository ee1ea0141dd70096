/** encodeResponse: owner names point at the question, and what does not fit goes in order. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import dnsPacket, { type Answer, type OptAnswer } from 'dns-packet';
import { encodeResponse, plainQuestionBytes, recordBytes } from '../../../src/dns/dns-wire.js';

const NAME = 'Web.Service.Consul';
const srv = (n: number): Answer[] =>
  Array.from({ length: n }, (_, i) => ({
    type: 'SRV' as const,
    name: NAME,
    ttl: 0,
    data: { priority: 0, weight: 1, port: 80, target: `t${i}.addr.dc1.consul` },
  }));
const glue = (n: number): Answer[] =>
  Array.from({ length: n }, (_, i) => ({
    type: 'A' as const,
    name: `t${i}.addr.dc1.consul`,
    ttl: 0,
    data: '10.0.0.1',
  }));
const opt: OptAnswer = {
  type: 'OPT',
  name: '.',
  udpPayloadSize: 4096,
  extendedRcode: 0,
  ednsVersion: 0,
  flags: 0,
  flag_do: false,
  options: [],
};

function response(n: number, budget: number, withOpt = true) {
  const { bytes, truncated } = encodeResponse(
    {
      id: 7,
      flags: 0x0400,
      question: { type: 'SRV', name: NAME },
      answers: srv(n),
      authorities: [],
      additionals: glue(n),
      ...(withOpt ? { opt } : {}),
    },
    budget,
  );
  return { bytes, truncated, decoded: dnsPacket.decode(bytes) };
}

describe('encodeResponse', () => {
  it('encodes a response dns-packet decodes back, owner names pointing at the question', () => {
    const { bytes, truncated, decoded } = response(2, 512);
    assert.equal(truncated, false);
    assert.equal(decoded.id, 7);
    assert.equal(decoded.type, 'response');
    assert.equal(decoded.flag_aa, true);
    assert.deepEqual(
      decoded.answers?.map((a) => [a.name, a.type]),
      [
        [NAME, 'SRV'],
        [NAME, 'SRV'],
      ],
    );
    assert.equal(decoded.additionals?.length, 3);
    assert.equal(decoded.additionals?.at(-1)?.type, 'OPT', 'the OPT record stays last');
    // Each answer starts with the 2-byte pointer 0xc00c rather than the 20-byte name.
    const first = recordBytes(srv(1)[0] as Answer, NAME);
    assert.deepEqual([...first.subarray(0, 2)], [0xc0, 0x0c]);
    assert.ok(
      bytes.length <
        dnsPacket.encodingLength({
          questions: [{ type: 'SRV', name: NAME }],
          answers: srv(2),
          additionals: [...glue(2), opt],
        }),
    );
  });

  it('drops Additional records first, without TC', () => {
    const full = response(8, 65_535).bytes.length;
    const { truncated, decoded } = response(8, full - 20);
    assert.equal(truncated, false);
    assert.equal(decoded.answers?.length, 8);
    assert.equal(decoded.additionals?.length, 8, 'one glue record of 8 gone, OPT kept');
    assert.equal(decoded.additionals?.at(-1)?.type, 'OPT');
  });

  it('keeps the longest prefix of answers that fits, and sets TC', () => {
    const { bytes, truncated, decoded } = response(100, 512);
    assert.equal(truncated, true);
    assert.equal(decoded.flag_tc, true);
    const n = decoded.answers?.length ?? 0;
    assert.ok(n > 0 && n < 100);
    assert.ok(bytes.length <= 512);
    const srvBytes = recordBytes(srv(1)[0] as Answer, NAME).length;
    assert.ok(bytes.length + srvBytes > 512, 'one more answer would not have fit');
    assert.equal(decoded.additionals?.at(-1)?.type, 'OPT');
  });

  it('reuses the bytes of a record object and re-encodes it for another owner', () => {
    const a = srv(1)[0] as Answer;
    assert.equal(recordBytes(a, NAME), recordBytes(a, NAME));
    const other = recordBytes(a, 'other.consul');
    assert.notDeepEqual([...other.subarray(0, 2)], [0xc0, 0x0c]);
  });
});

describe('plainQuestionBytes', () => {
  const q = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'SRV', name: NAME }] });

  it('gives the question as the query carried it', () => {
    const bytes = plainQuestionBytes(q);
    assert.deepEqual(bytes, q.subarray(12));
    const echoed = encodeResponse(
      {
        id: 1,
        flags: 0,
        question: { type: 'SRV', name: NAME },
        ...(bytes === undefined ? {} : { questionBytes: bytes }),
        answers: srv(1),
        authorities: [],
        additionals: [],
      },
      512,
    ).bytes;
    assert.equal(dnsPacket.decode(echoed).questions?.[0]?.name, NAME);
  });

  it('gives nothing for a name with a pointer or a cut question', () => {
    const pointer = Buffer.concat([q.subarray(0, 12), Buffer.from([0xc0, 0x00, 0, 1, 0, 1])]);
    assert.equal(plainQuestionBytes(pointer), undefined);
    assert.equal(plainQuestionBytes(q.subarray(0, q.length - 2)), undefined);
    assert.equal(plainQuestionBytes(q.subarray(0, 14)), undefined);
  });
});
