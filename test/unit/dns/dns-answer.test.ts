/** DnsAnswerBuilder: which instances, which records, weights and priorities, TTLs, fitting. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Answer } from 'dns-packet';
import type { DiscoveredInstance } from '../../../src/core/discovery.js';
import { DnsAnswerBuilder, RCODE, weightedOrder } from '../../../src/dns/dns-answer.js';
import { DnsNameRouter } from '../../../src/dns/dns-name-router.js';
import { DEFAULT_DNS_OPTIONS, type DnsOptions } from '../../../src/dns/options.js';
import { FakeDiscovery, seededRandom } from '../../../src/testing/index.js';

const router = new DnsNameRouter({ domains: ['consul'], datacenter: 'dc1' });

function setup(
  instances: readonly Partial<DiscoveredInstance>[],
  options: Partial<DnsOptions> = {},
): {
  discovery: FakeDiscovery;
  ask: (name: string, type?: string) => ReturnType<DnsAnswerBuilder['build']>;
} {
  const discovery = new FakeDiscovery(instances, [{ name: 'agent-1', address: '192.0.2.1' }]);
  const builder = new DnsAnswerBuilder({
    discovery,
    options: { ...DEFAULT_DNS_OPTIONS, ...options },
    datacenter: 'dc1',
    nsAddress: '127.0.0.1',
    random: seededRandom(7),
  });
  return { discovery, ask: (name, type = 'A') => builder.build(router.route(name), name, type) };
}

const ttlOf = (a: Answer | undefined): number | undefined =>
  a !== undefined && 'ttl' in a ? a.ttl : undefined;

const data = (answers: readonly Answer[]): unknown[] =>
  answers.map((a) => ('data' in a ? a.data : undefined));

describe('DnsAnswerBuilder', () => {
  it('answers passing and warning instances, never critical, maintenance or starting', () => {
    const { ask } = setup([
      { address: '10.0.0.1', status: 'passing' },
      { address: '10.0.0.2', status: 'warning' },
      { address: '10.0.0.3', status: 'critical' },
      { address: '10.0.0.4', status: 'maintenance' },
      { address: '10.0.0.5', status: 'starting' },
    ]);
    const r = ask('web.service.consul');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.deepEqual(data(r.answers).sort(), ['10.0.0.1', '10.0.0.2']);
  });

  it('leaves warning instances out with onlyPassing', () => {
    const { ask } = setup(
      [
        { address: '10.0.0.1', status: 'passing' },
        { address: '10.0.0.2', status: 'warning' },
      ],
      { onlyPassing: true },
    );
    assert.deepEqual(data(ask('web.service.consul').answers), ['10.0.0.1']);
  });

  it('answers NXDOMAIN with the SOA for unknown services and services with no healthy instance', () => {
    const { ask } = setup([{ status: 'critical' }]);
    for (const name of ['web.service.consul', 'nope.service.consul', 'x.y.consul']) {
      const r = ask(name);
      assert.equal(r.rcode, RCODE.NXDOMAIN, name);
      assert.deepEqual(r.answers, []);
      assert.equal(r.authorities[0]?.type, 'SOA');
      assert.equal(r.authorities[0]?.name, 'consul');
    }
  });

  it('answers NOERROR with no records and the SOA for a type the name does not have', () => {
    const { ask } = setup([{ address: '10.0.0.1' }]);
    for (const type of ['AAAA', 'MX', 'CAA']) {
      const r = ask('web.service.consul', type);
      assert.equal(r.rcode, RCODE.NOERROR, type);
      assert.deepEqual(r.answers, []);
      assert.equal(r.authorities[0]?.type, 'SOA');
    }
  });

  it('answers AAAA for IPv6 instances and one CNAME when only hostnames are left', () => {
    const { ask } = setup([
      { address: 'fd00::1' },
      { address: 'api.example.com', id: 'h1' },
      { address: 'other.example.com', id: 'h2' },
    ]);
    assert.deepEqual(data(ask('web.service.consul', 'AAAA').answers), ['fd00::1']);
    const a = ask('web.service.consul', 'A');
    assert.equal(a.answers.length, 1, 'a name with a CNAME has no other data (RFC 1034)');
    assert.equal(a.answers[0]?.type, 'CNAME');
    assert.match(String(data(a.answers)[0]), /^(api|other)\.example\.com$/);
  });

  it('answers SRV with the instance priority, its weight by status, and addr targets with glue', () => {
    const { ask } = setup([
      { address: '10.0.0.1', port: 8080, priority: 2, weights: { passing: 10, warning: 1 } },
      {
        address: '10.0.0.2',
        port: 8081,
        priority: 1,
        weights: { passing: 10, warning: 3 },
        status: 'warning',
      },
      { address: 'api.example.com', port: 8082 },
    ]);
    const r = ask('_web._tcp.service.consul', 'SRV');
    assert.deepEqual(data(r.answers), [
      { priority: 0, weight: 1, port: 8082, target: 'api.example.com' },
      { priority: 1, weight: 3, port: 8081, target: '0a000002.addr.dc1.consul' },
      { priority: 2, weight: 10, port: 8080, target: '0a000001.addr.dc1.consul' },
    ]);
    assert.deepEqual(
      r.additionals.map((a) => [a.name, a.type, 'data' in a ? a.data : undefined]),
      [
        ['0a000002.addr.dc1.consul', 'A', '10.0.0.2'],
        ['0a000001.addr.dc1.consul', 'A', '10.0.0.1'],
      ],
    );
  });

  // Issue 16: HAProxy pairs each Additional record with one SRV record; instances sharing an IP
  // each need a glue record, or their server-template slots get no address.
  it('answers one glue record per SRV answer when instances share an IP', () => {
    const { ask } = setup([
      { address: '127.0.0.1', port: 19101 },
      { address: '127.0.0.1', port: 19102 },
      { address: '127.0.0.1', port: 19103 },
    ]);
    const r = ask('_web._tcp.service.consul', 'SRV');
    assert.equal(r.answers.length, 3);
    assert.deepEqual(
      r.additionals.map((a) => [a.name, a.type, 'data' in a ? a.data : undefined]),
      Array(3).fill(['7f000001.addr.dc1.consul', 'A', '127.0.0.1']),
    );
  });

  // Issue 16: a CNAME question for a service of hostnames answered NODATA.
  it('answers a CNAME question with the CNAME exactly when ANY does', () => {
    const hostnames = setup([{ address: 'api.example.com.' }]).ask;
    for (const type of ['CNAME', 'ANY', 'A', 'AAAA']) {
      const r = hostnames('web.service.consul', type);
      assert.equal(r.rcode, RCODE.NOERROR, type);
      assert.deepEqual(
        r.answers.map((a) => [a.type, 'data' in a ? a.data : undefined]),
        [['CNAME', 'api.example.com']],
        type,
      );
    }
    // With an IP left the name has address records, so it is no alias (RFC 1034 §3.6.2).
    const mixed = setup([{ address: 'api.example.com' }, { address: 'fd00::1' }]).ask;
    assert.deepEqual(data(mixed('web.service.consul', 'ANY').answers), ['fd00::1']);
    const r = mixed('web.service.consul', 'CNAME');
    assert.equal(r.rcode, RCODE.NOERROR);
    assert.deepEqual(r.answers, []);
    assert.equal(r.authorities[0]?.type, 'SOA');
  });

  it('answers named ports with that port, for the instances that have it', () => {
    const { ask } = setup([
      { address: '10.0.0.1', ports: { grpc: 9090 } },
      { address: '10.0.0.2', ports: { admin: 9901 } },
    ]);
    const r = ask('_grpc._tcp.web.service.consul', 'SRV');
    assert.deepEqual(
      data(r.answers).map((d) => (d as { port: number }).port),
      [9090],
    );
    assert.equal(ask('_http._tcp.web.service.consul', 'SRV').rcode, RCODE.NXDOMAIN);
  });

  it('filters by tag, case-insensitively', () => {
    const { ask } = setup([
      { address: '10.0.0.1', tags: ['V2', 'eu.west'] },
      { address: '10.0.0.2', tags: ['v1'] },
    ]);
    assert.deepEqual(data(ask('v2.web.service.consul').answers), ['10.0.0.1']);
    assert.deepEqual(data(ask('eu.west.web.service.consul').answers), ['10.0.0.1']);
    assert.deepEqual(data(ask('_web._v1.service.consul', 'A').answers), ['10.0.0.2']);
    assert.equal(ask('v3.web.service.consul').rcode, RCODE.NXDOMAIN);
  });

  it('answers TXT with the instance id and meta as key=value (RFC 1464)', () => {
    const { ask } = setup([{ id: 'web-1', meta: { version: '2.1.0', zone: 'eu-1a' } }]);
    assert.deepEqual(data(ask('web.service.consul', 'TXT').answers), [
      ['instance=web-1', 'version=2.1.0', 'zone=eu-1a'],
    ]);
  });

  // Issue 16: `consul-registered=true` (the /v1 adapter's marker) leaked into TXT.
  it('leaves the internal consul-* markers out of TXT', () => {
    const { ask } = setup([
      {
        id: 'web-1',
        meta: { 'consul-registered': 'true', 'consul-enable-tag-override': 'true', env: 'prod' },
      },
    ]);
    assert.deepEqual(data(ask('web.service.consul', 'TXT').answers), [
      ['instance=web-1', 'env=prod'],
    ]);
  });

  it('splits TXT attributes over 255 bytes into strings of at most 255 bytes', () => {
    const value = 'é'.repeat(300); // 600 bytes of UTF-8
    const { ask } = setup([{ id: 'web-1', meta: { note: value } }]);
    const strings = data(ask('web.service.consul', 'TXT').answers)[0] as (string | Buffer)[];
    assert.equal(strings[0], 'instance=web-1');
    const chunks = strings.slice(1).map((x) => Buffer.from(x));
    assert.ok(chunks.every((c) => c.length <= 255));
    assert.equal(Buffer.concat(chunks).toString('utf8'), `note=${value}`);
  });

  it('keeps at most answerLimit instances', () => {
    const many = Array.from({ length: 10 }, (_, n) => ({ address: `10.0.1.${n}` }));
    const { ask } = setup(many, { answerLimit: 3 });
    assert.equal(ask('web.service.consul').answers.length, 3);
    assert.equal(ask('web.service.consul', 'SRV').answers.length, 3);
  });

  it('takes TTLs from serviceTtlMs (exact name, then the longest prefix*), else the default', () => {
    const { ask } = setup(
      [
        { service: 'web' },
        { service: 'web-admin' },
        { service: 'api' },
        { service: 'apiary', address: '10.0.9.9' },
      ],
      {
        defaultTtlMs: 5000,
        serviceTtlMs: { web: 30_000, 'web-*': 20_000, 'a*': 10_000, 'api*': 15_000 },
      },
    );
    const ttl = (name: string): number | undefined => ttlOf(ask(name).answers[0]);
    assert.equal(ttl('web.service.consul'), 30);
    assert.equal(ttl('web-admin.service.consul'), 20);
    assert.equal(ttl('apiary.service.consul'), 15);
    const { ask: plain } = setup([{}], { defaultTtlMs: 5000 });
    assert.equal(ttlOf(plain('web.service.consul').answers[0]), 5);
  });

  it('shows a catalog change in the very next answer', () => {
    const { discovery, ask } = setup([{ address: '10.0.0.1' }, { address: '10.0.0.2' }]);
    assert.equal(ask('web.service.consul').answers.length, 2);
    discovery.set([{ address: '10.0.0.1' }, { address: '10.0.0.2', status: 'critical' }]);
    assert.deepEqual(data(ask('web.service.consul').answers), ['10.0.0.1']);
    discovery.set([]);
    assert.equal(ask('web.service.consul').rcode, RCODE.NXDOMAIN);
  });

  it('answers nodes, addr names, ns, the apex (SOA serial = catalog index, NS) and PTR', () => {
    const { discovery, ask } = setup([{ address: '10.0.0.1', service: 'pay' }]);
    assert.deepEqual(data(ask('agent-1.node.consul').answers), ['192.0.2.1']);
    assert.equal(ask('agent-2.node.consul').rcode, RCODE.NXDOMAIN);
    assert.deepEqual(data(ask('0a000001.addr.consul').answers), ['10.0.0.1']);
    assert.deepEqual(data(ask('ns.consul').answers), ['127.0.0.1']);
    const soa = ask('consul', 'SOA').answers[0];
    assert.equal((soa as { data: { serial: number } }).data.serial, discovery.index);
    const ns = ask('consul', 'NS');
    assert.deepEqual(data(ns.answers), ['ns.consul']);
    assert.deepEqual(data(ns.additionals), ['127.0.0.1']);
    assert.deepEqual(data(ask('1.0.0.10.in-addr.arpa', 'PTR').answers), ['pay.service.dc1.consul']);
    assert.deepEqual(data(ask('1.2.0.192.in-addr.arpa', 'PTR').answers), [
      'agent-1.node.dc1.consul',
    ]);
    assert.equal(ask('9.9.9.9.in-addr.arpa', 'PTR').rcode, RCODE.NXDOMAIN);
    assert.equal(ask('example.com').rcode, RCODE.REFUSED);
  });
});

describe('weightedOrder', () => {
  const inst = (id: string, weight: number, priority = 0): DiscoveredInstance => ({
    id,
    service: 'web',
    address: '10.0.0.1',
    port: 80,
    ports: {},
    tags: [],
    meta: {},
    weights: { passing: weight, warning: weight },
    priority,
    status: 'passing',
  });

  it('puts an instance first with probability weight / total (seeded, 20k draws)', () => {
    const random = seededRandom(42);
    const list = [inst('a', 6), inst('b', 3), inst('c', 1)];
    const firsts: Record<string, number> = { a: 0, b: 0, c: 0 };
    const draws = 20_000;
    for (let n = 0; n < draws; n++) {
      const id = weightedOrder(list, random)[0]?.id as string;
      firsts[id] = (firsts[id] ?? 0) + 1;
    }
    assert.ok(Math.abs((firsts.a ?? 0) / draws - 0.6) < 0.02, JSON.stringify(firsts));
    assert.ok(Math.abs((firsts.b ?? 0) / draws - 0.3) < 0.02, JSON.stringify(firsts));
    assert.ok(Math.abs((firsts.c ?? 0) / draws - 0.1) < 0.02, JSON.stringify(firsts));
  });

  it('orders by priority first (lowest first), weight 0 last within its priority', () => {
    const random = seededRandom(1);
    for (let n = 0; n < 200; n++) {
      const ids = weightedOrder(
        [inst('p2', 100, 2), inst('zero', 0, 1), inst('p1a', 1, 1), inst('p1b', 5, 1)],
        random,
      ).map((i) => i.id);
      assert.equal(ids[3], 'p2');
      assert.equal(ids[2], 'zero');
      assert.deepEqual(ids.slice(0, 2).sort(), ['p1a', 'p1b']);
    }
  });

  it('repeats for the same seed', () => {
    const list = Array.from({ length: 20 }, (_, n) => inst(`i${n}`, n + 1));
    const once = weightedOrder(list, seededRandom(9)).map((i) => i.id);
    assert.deepEqual(
      weightedOrder(list, seededRandom(9)).map((i) => i.id),
      once,
    );
  });
});
