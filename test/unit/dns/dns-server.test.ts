/** DnsServer: options checked once, the error boundary, and one port for UDP and TCP. */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import dnsPacket from 'dns-packet';
import { ERROR_CODES, isMeshError } from '../../../src/core/errors.js';
import type { Logger, LogFields } from '../../../src/core/logger.js';
import { createDnsServer } from '../../../src/dns/dns-server.js';
import { FakeDiscovery } from '../../../src/testing/index.js';

const query = (name: string, type = 'A', id = 42): Buffer =>
  dnsPacket.encode({ type: 'query', id, questions: [{ type: type as 'A', name }] });

/** A logger that keeps what was logged at error level. */
function recordingLogger(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const log: Logger & { errors: string[] } = {
    errors,
    error: (_f: LogFields, msg: string) => void errors.push(msg),
    warn: () => undefined,
    info: () => undefined,
    debug: () => undefined,
    child: () => log,
  };
  return log;
}

describe('DnsServer', () => {
  it('checks its options once and lists every problem', () => {
    assert.throws(
      () =>
        createDnsServer({
          discovery: new FakeDiscovery(),
          options: { domain: 'no spaces', defaultTtlMs: 10, answerLimit: -1 },
        }),
      (err: unknown) => {
        assert.ok(isMeshError(err, ERROR_CODES.CONFIG_INVALID));
        assert.match(err.message, /dns\.domain/);
        assert.match(err.message, /dns\.defaultTtlMs/);
        assert.match(err.message, /dns\.answerLimit/);
        return true;
      },
    );
  });

  it('answers nothing to messages shorter than a header or that are responses', async () => {
    const server = createDnsServer({ discovery: new FakeDiscovery() });
    assert.equal(await server.respond(Buffer.from([1, 2, 3]), 'udp'), undefined);
    const response = dnsPacket.encode({ type: 'response', id: 1, questions: [] });
    assert.equal(await server.respond(response, 'udp'), undefined);
  });

  it('answers FORMERR with the id to what does not decode, or has no single question', async () => {
    const server = createDnsServer({ discovery: new FakeDiscovery() });
    const garbage = Buffer.from([0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0]);
    for (const msg of [garbage, dnsPacket.encode({ type: 'query', id: 0xabcd, questions: [] })]) {
      const out = dnsPacket.decode((await server.respond(msg, 'udp')) as Buffer);
      assert.equal(out.id, 0xabcd);
      assert.equal((out as { rcode?: string }).rcode, 'FORMERR');
    }
  });

  it('maps a failure while answering to SERVFAIL, logged, and keeps answering', async () => {
    const discovery = new FakeDiscovery([{ service: 'web' }]);
    let broken = true;
    const real = discovery.instances.bind(discovery);
    discovery.instances = (service: string) => {
      if (broken) throw new Error('catalog on fire');
      return real(service);
    };
    discovery.index++;
    const logger = recordingLogger();
    const server = createDnsServer({ discovery, logger });
    const failed = dnsPacket.decode(
      (await server.respond(query('web.service.consul'), 'udp')) as Buffer,
    );
    assert.equal((failed as { rcode?: string }).rcode, 'SERVFAIL');
    assert.deepEqual(logger.errors, ['DNS answer failed']);
    broken = false;
    const ok = dnsPacket.decode(
      (await server.respond(query('web.service.consul'), 'udp')) as Buffer,
    );
    assert.equal((ok as { rcode?: string }).rcode, 'NOERROR');
    assert.equal(ok.answers?.length, 1);
  });

  it('listens on a hostname as the address it resolves to, and names it as ns.', async () => {
    const server = createDnsServer({
      discovery: new FakeDiscovery(),
      options: { listen: 'localhost:0' },
    });
    const { host } = await server.listen();
    try {
      assert.equal(host, '127.0.0.1');
      const ns = dnsPacket.decode((await server.respond(query('consul', 'NS'), 'udp')) as Buffer);
      assert.deepEqual(
        ns.additionals?.map((a) => ('data' in a ? a.data : undefined)),
        ['127.0.0.1'],
      );
    } finally {
      await server.close();
    }
  });

  it('listens on one port for UDP and TCP (port 0), and closes both', async () => {
    const server = createDnsServer({
      discovery: new FakeDiscovery([{ service: 'web', address: '10.0.0.9' }]),
      options: { listen: '127.0.0.1:0' },
    });
    const { port } = await server.listen();
    assert.ok(port > 0);
    const udp = createSocket('udp4');
    const viaUdp = await new Promise<Buffer>((resolve) => {
      udp.once('message', resolve);
      udp.send(query('web.service.consul'), port, '127.0.0.1');
    });
    udp.close();
    assert.deepEqual(
      dnsPacket.decode(viaUdp).answers?.map((a) => ('data' in a ? a.data : undefined)),
      ['10.0.0.9'],
    );
    const tcp = connect(port, '127.0.0.1');
    const viaTcp = await new Promise<Buffer>((resolve) => {
      tcp.once('data', (d: Buffer) => resolve(d));
      const q = query('web.service.consul');
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(q.length, 0);
      tcp.write(Buffer.concat([prefix, q]));
    });
    tcp.destroy();
    assert.equal(viaTcp.readUInt16BE(0), viaTcp.length - 2);
    assert.equal(dnsPacket.decode(viaTcp.subarray(2)).answers?.length, 1);
    await server.close();
    await assert.rejects(
      new Promise((resolve, reject) => {
        const again = connect(port, '127.0.0.1');
        again.once('connect', () => {
          again.destroy();
          resolve(undefined);
        });
        again.once('error', reject);
      }),
      { code: 'ECONNREFUSED' },
    );
  });
});
