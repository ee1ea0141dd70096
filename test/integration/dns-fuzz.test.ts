/**
 * Hostile input against the real DNS server over UDP and TCP (fast-check, seeded): random bytes,
 * mangled queries, compression-pointer loops, lying counts. Every packet gets a well-formed
 * answer (never SERVFAIL) or silence, and the server keeps answering a probe afterwards.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

const PROBE_ID = 0xbeef;
const probe = dnsPacket.encode({
  type: 'query',
  id: PROBE_ID,
  flags: dnsPacket.RECURSION_DESIRED,
  questions: [{ type: 'A', name: 'web.service.consul' }],
});
const RCODES_FOR_HOSTILE = new Set(['NOERROR', 'FORMERR', 'NXDOMAIN', 'NOTIMP', 'REFUSED']);

/** Valid queries, then mangled: truncated, bytes overwritten, or extended with junk. */
const query = fc
  .record({
    id: fc.integer({ min: 0, max: 0xfffe }),
    name: fc.constantFrom(
      'web.service.consul',
      '_web._tcp.service.consul',
      'v1.web.service.consul',
      'consul',
      'example.com',
      '1.0.0.10.in-addr.arpa',
      '0a000001.addr.consul',
    ),
    type: fc.constantFrom('A', 'AAAA', 'SRV', 'TXT', 'ANY', 'SOA', 'NS', 'PTR', 'MX'),
    edns: fc.option(fc.integer({ min: 0, max: 65535 })),
  })
  .map(({ id, name, type, edns }) =>
    dnsPacket.encode({
      type: 'query',
      id,
      questions: [{ type: type as 'A', name }],
      additionals:
        edns === null
          ? []
          : [
              {
                type: 'OPT',
                name: '.',
                udpPayloadSize: edns,
                extendedRcode: 0,
                ednsVersion: 0,
                flags: 0,
                flag_do: false,
                options: [],
              },
            ],
    }),
  );

const mangled = fc
  .tuple(
    query,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat()),
    fc.uint8Array({ maxLength: 64 }),
  )
  .map(([q, writes, cut, tail]) => {
    const b = Buffer.from(q);
    for (const [at, v] of writes) b[at % b.length] = v;
    const kept = cut === null ? b : b.subarray(0, cut % (b.length + 1));
    return Buffer.concat([kept, tail]);
  });

/** A header claiming one question whose name is a pointer to itself or forward (loops). */
const pointerLoop = fc
  .tuple(fc.integer({ min: 0, max: 0x3fff }), fc.uint8Array({ maxLength: 32 }))
  .map(([target, junk]) => {
    const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    const ptr = Buffer.from([0xc0 | (target >> 8), target & 0xff, 0, 1, 0, 1]);
    return Buffer.concat([header, Buffer.from([3, 0x61, 0x62, 0x63]), ptr, junk]);
  });

/** A header whose counts lie (up to 65535 of each), with a little body. */
const lyingCounts = fc
  .tuple(
    fc.uint8Array({ minLength: 4, maxLength: 4 }),
    fc.uint8Array({ minLength: 8, maxLength: 8 }),
    fc.uint8Array({ maxLength: 48 }),
  )
  .map(([idFlags, counts, body]) =>
    Buffer.concat([Buffer.from(idFlags), Buffer.from(counts), Buffer.from(body)]),
  );

/** Hostile packets; none carries the probe's id, so the probe's answer is told apart. */
const hostile = fc
  .oneof(
    fc.uint8Array({ maxLength: 700 }).map((a) => Buffer.from(a)),
    mangled,
    pointerLoop,
    lyingCounts,
    fc.uint8Array({ minLength: 3000, maxLength: 4000 }).map((a) => Buffer.from(a)),
  )
  .map((b) => {
    if (b.length >= 2 && b.readUInt16BE(0) === PROBE_ID) b[0] = 0;
    return b;
  });

/** The rcodes hostile packets got, so a run that never reached the server cannot pass. */
const seen = new Set<string>();

/** Checks one answer to a hostile packet: it decodes, is a response, and is not SERVFAIL. */
function assertWellFormed(sent: Buffer, answer: Buffer): void {
  const decoded = dnsPacket.decode(answer);
  seen.add(String((decoded as { rcode?: string }).rcode));
  assert.equal(decoded.type, 'response');
  assert.equal(decoded.id, sent.readUInt16BE(0));
  assert.ok(
    RCODES_FOR_HOSTILE.has(String((decoded as { rcode?: string }).rcode)),
    String((decoded as { rcode?: string }).rcode),
  );
}

class UdpClient {
  readonly socket: UdpSocket = createSocket('udp4');
  #inbox: Buffer[] = [];
  #waiter: (() => void) | undefined;
  constructor(private readonly port: number) {
    this.socket.on('message', (m) => {
      this.#inbox.push(m);
      this.#waiter?.();
    });
  }

  /** Sends `packet`, then the probe; resolves with what came back before the probe's answer. */
  async exchange(packet: Buffer): Promise<Buffer[]> {
    this.#inbox = [];
    this.socket.send(packet, this.port, '127.0.0.1');
    this.socket.send(probe, this.port, '127.0.0.1');
    const deadline = Date.now() + 5000;
    for (;;) {
      const i = this.#inbox.findIndex((m) => m.length >= 2 && m.readUInt16BE(0) === PROBE_ID);
      if (i >= 0) return this.#inbox.slice(0, i);
      if (Date.now() > deadline) throw new Error('the server stopped answering the probe');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

/** Reads length-prefixed frames from a TCP socket. */
function frames(socket: Socket): {
  next(timeoutMs: number): Promise<Buffer | 'closed' | 'timeout'>;
} {
  let pending = Buffer.alloc(0);
  const ready: Buffer[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      ready.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
      pending = pending.subarray(2 + pending.readUInt16BE(0));
    }
    wake?.();
  });
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  socket.on('error', () => undefined);
  return {
    async next(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const f = ready.shift();
        if (f !== undefined) return f;
        if (closed) return 'closed';
        const left = deadline - Date.now();
        if (left <= 0) return 'timeout';
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    },
  };
}

const framed = (b: Buffer): Buffer => {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(b.length, 0);
  return Buffer.concat([p, b]);
};

async function open(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

describe('DNS server under hostile input (fast-check)', () => {
  let agent: TestAgent;
  let port: number;
  before(async () => {
    agent = await startTestAgent({ dns: { tcpIdleTimeoutMs: 300, maxTcpConnections: 4 } });
    port = agent.dns?.port ?? 0;
    const r = await http(agent.url, 'PUT', '/api/v1/instances', {
      service: 'web',
      address: '10.0.0.1',
      port: 80,
    });
    assert.equal(r.status, 200, r.text);
  });
  after(async () => {
    await agent.stop();
  });

  const assertVaried = (): void => {
    // Both refusals of garbage and real answers to mangled-but-valid queries happened.
    const got = [...seen].join(', ');
    assert.ok(seen.has('FORMERR') && seen.size >= 3, `only ${got}`);
    seen.clear();
  };

  it('UDP: answers each packet well-formed or not at all, and keeps answering', async () => {
    const client = new UdpClient(port);
    try {
      await fc.assert(
        fc.asyncProperty(hostile, async (packet) => {
          const answers = await client.exchange(packet);
          assert.ok(answers.length <= 1, `${answers.length} answers to one packet`);
          for (const a of answers) assertWellFormed(packet, a);
        }),
        { seed: 5, numRuns: 300 },
      );
      assertVaried();
    } finally {
      client.socket.close();
    }
  });

  it('TCP: answers each frame well-formed or not at all, on one connection, and keeps answering', async () => {
    const socket = await open(port);
    const reader = frames(socket);
    try {
      await fc.assert(
        fc.asyncProperty(hostile, async (packet) => {
          socket.write(Buffer.concat([framed(packet), framed(probe)]));
          for (;;) {
            const f = await reader.next(5000);
            assert.ok(Buffer.isBuffer(f), `connection ${String(f)} before the probe's answer`);
            if (f.readUInt16BE(0) === PROBE_ID) return;
            assertWellFormed(packet, f);
          }
        }),
        { seed: 6, numRuns: 200 },
      );
      assertVaried();
    } finally {
      socket.destroy();
    }
  });

  it('TCP: closes a connection that stays idle (or never finishes its frame)', async () => {
    const socket = await open(port);
    const reader = frames(socket);
    socket.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
    assert.equal(await reader.next(5000), 'closed');
    const again = await open(port);
    const r = frames(again);
    again.write(framed(probe));
    const answer = await r.next(5000);
    assert.ok(Buffer.isBuffer(answer));
    again.destroy();
  });

  it('TCP: holds at most maxTcpConnections and still serves UDP', async () => {
    const sockets = await Promise.all(Array.from({ length: 6 }, () => open(port)));
    const readers = sockets.map(frames);
    sockets.forEach((s) => s.write(framed(probe)));
    const results = await Promise.all(readers.map((r) => r.next(3000)));
    assert.equal(results.filter((r) => Buffer.isBuffer(r)).length, 4);
    assert.equal(results.filter((r) => r === 'closed').length, 2);
    for (const s of sockets) s.destroy();
    const client = new UdpClient(port);
    assert.deepEqual(await client.exchange(Buffer.alloc(0)), []);
    client.socket.close();
  });
});
