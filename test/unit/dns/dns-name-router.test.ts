/** DnsNameRouter: Consul's names, RFC 2782 names, named ports, nodes, addr, PTR and the rest. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addressHex,
  canonicalIPv6,
  DnsNameRouter,
  hexAddress,
} from '../../../src/dns/dns-name-router.js';

const router = new DnsNameRouter({ domains: ['consul', 'meshwork.example'], datacenter: 'dc1' });
const route = (name: string) => router.route(name);

describe('DnsNameRouter', () => {
  it('routes <service>.service.<domain>, with or without the datacenter', () => {
    const web = { kind: 'service', domain: 'consul', service: 'web' };
    assert.deepEqual(route('web.service.consul'), web);
    assert.deepEqual(route('web.service.dc1.consul'), web);
    assert.deepEqual(route('web.service.dc1.dc.consul'), web);
  });

  it('answers other datacenters and unknown kinds as unknown (NXDOMAIN)', () => {
    assert.deepEqual(route('web.service.dc2.consul'), { kind: 'unknown', domain: 'consul' });
    assert.deepEqual(route('web.query.consul'), { kind: 'unknown', domain: 'consul' });
    assert.deepEqual(route('service.consul'), { kind: 'unknown', domain: 'consul' });
    assert.deepEqual(route('Bad_Name.service.consul'), { kind: 'unknown', domain: 'consul' });
  });

  it('compares case-insensitively and serves the alternative domain', () => {
    assert.deepEqual(route('WEB.Service.CONSUL'), {
      kind: 'service',
      domain: 'consul',
      service: 'web',
    });
    assert.deepEqual(route('web.service.meshwork.example'), {
      kind: 'service',
      domain: 'meshwork.example',
      service: 'web',
    });
  });

  it('joins every label left of the service into one tag (tags may hold dots)', () => {
    assert.deepEqual(route('v2.web.service.consul'), {
      kind: 'service',
      domain: 'consul',
      service: 'web',
      tag: 'v2',
    });
    assert.deepEqual(route('eu.v2.web.service.consul'), {
      kind: 'service',
      domain: 'consul',
      service: 'web',
      tag: 'eu.v2',
    });
  });

  it('routes RFC 2782 names: _tcp/_udp mean no tag, any other protocol label is a tag', () => {
    const web = { kind: 'service', domain: 'consul', service: 'web' };
    assert.deepEqual(route('_web._tcp.service.consul'), web);
    assert.deepEqual(route('_web._udp.service.dc1.consul'), web);
    assert.deepEqual(route('_web._tcp.consul'), web, 'the service label is optional');
    assert.deepEqual(route('_web._tcp.dc1.consul'), web);
    assert.deepEqual(route('_web._v2.service.consul'), { ...web, tag: 'v2' });
  });

  it('routes named ports: _<port>._tcp.<service>.service', () => {
    assert.deepEqual(route('_grpc._tcp.web.service.consul'), {
      kind: 'service',
      domain: 'consul',
      service: 'web',
      portName: 'grpc',
    });
    assert.deepEqual(route('_grpc._x.web.service.consul'), { kind: 'unknown', domain: 'consul' });
    assert.deepEqual(route('_web.service.consul'), { kind: 'unknown', domain: 'consul' });
  });

  it('routes nodes (dots allowed), addr names, ns and the apex', () => {
    assert.deepEqual(route('agent-1.node.consul'), {
      kind: 'node',
      domain: 'consul',
      node: 'agent-1',
    });
    assert.deepEqual(route('a.b.node.dc1.consul'), { kind: 'node', domain: 'consul', node: 'a.b' });
    assert.deepEqual(route('0a000001.addr.dc1.consul'), {
      kind: 'addr',
      domain: 'consul',
      address: '10.0.0.1',
    });
    assert.deepEqual(route('zz.addr.consul'), { kind: 'unknown', domain: 'consul' });
    assert.deepEqual(route('ns.consul'), { kind: 'ns', domain: 'consul' });
    assert.deepEqual(route('Consul'), { kind: 'apex', domain: 'consul' });
  });

  it('routes reverse names to PTR and everything else outside', () => {
    assert.deepEqual(route('1.0.0.10.in-addr.arpa'), { kind: 'ptr', address: '10.0.0.1' });
    const v6 = '3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa';
    assert.deepEqual(route(v6), { kind: 'ptr', address: 'fd00::3' });
    assert.deepEqual(route('1.0.10.in-addr.arpa'), { kind: 'outside' });
    assert.deepEqual(route('300.0.0.10.in-addr.arpa'), { kind: 'outside' });
    assert.deepEqual(route('example.com'), { kind: 'outside' });
    assert.deepEqual(route('notconsul'), { kind: 'outside' });
    assert.deepEqual(route('.'), { kind: 'outside' });
  });

  it('round-trips addresses through their addr hex', () => {
    for (const a of ['10.0.0.1', '255.1.0.9', 'fd00::3', '2001:db8::1:0:0:1']) {
      assert.equal(hexAddress(addressHex(a)), canonicalIPv6(a));
    }
    assert.equal(addressHex('::1'), '00000000000000000000000000000001');
    assert.equal(hexAddress('abc'), undefined);
  });
});
