/**
 * The DNS interface with real clients: dig (bind9-dnsutils) over UDP and TCP, and Node's
 * dns.promises.Resolver, against an agent on port 0.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { http, startTestAgent, type TestAgent } from '../helpers/agent.js';

const run = promisify(execFile);

/** Runs dig against `port` (async: the agent answers from this same process). */
async function dig(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('dig', [
    '@127.0.0.1',
    '-p',
    String(port),
    '+time=3',
    '+tries=1',
    ...args,
  ]);
  return stdout;
}

/** `dig +short` lines, sorted. */
async function short(port: number, ...args: string[]): Promise<string[]> {
  const out = await dig(port, '+short', ...args);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

/** The records of `dig +noall +<section>` output, one line each, fields one space apart. */
function records(out: string): string[] {
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(/\s+/).join(' '));
}

async function register(agent: TestAgent, body: Record<string, unknown>): Promise<void> {
  const r = await http(agent.url, 'PUT', '/api/v1/instances', body);
  assert.ok(r.status === 200 || r.status === 201, r.text);
}

describe('DNS interface (dig, node:dns)', () => {
  let agent: TestAgent;
  let port: number;
  before(async () => {
    agent = await startTestAgent({ dns: { altDomain: 'meshwork' } });
    port = agent.dns?.port ?? 0;
    assert.ok(port > 0);
    await register(agent, {
      service: 'payments',
      id: 'payments-1',
      address: '10.1.0.1',
      port: 8080,
      tags: ['v2'],
      weights: { passing: 10, warning: 1 },
      priority: 1,
      ports: { grpc: 9090 },
    });
    await register(agent, {
      service: 'payments',
      id: 'payments-2',
      address: '10.1.0.2',
      port: 8081,
      tags: ['v1'],
    });
    await register(agent, {
      service: 'payments',
      id: 'payments-3',
      address: 'fd00::3',
      port: 8082,
    });
    for (let n = 0; n < 60; n++) {
      await register(agent, { service: 'big', id: `big-${n}`, address: `10.2.0.${n}`, port: 80 });
    }
  });
  after(async () => {
    await agent.stop();
  });

  it('answers A and AAAA with the healthy instances', async () => {
    assert.deepEqual(await short(port, 'payments.service.consul', 'A'), ['10.1.0.1', '10.1.0.2']);
    assert.deepEqual(await short(port, 'payments.service.consul', 'AAAA'), ['fd00::3']);
  });

  it('answers SRV with priority, weight, port and an addr target, glue in Additional', async () => {
    assert.deepEqual(await short(port, 'payments.service.consul', 'SRV'), [
      '0 1 8081 0a010002.addr.dc1.consul.',
      '0 1 8082 fd000000000000000000000000000003.addr.dc1.consul.',
      '1 10 8080 0a010001.addr.dc1.consul.',
    ]);
    const full = await dig(port, '+noall', '+additional', 'payments.service.consul', 'SRV');
    assert.match(full, /^0a010001\.addr\.dc1\.consul\.\s+0\s+IN\s+A\s+10\.1\.0\.1$/m);
  });

  it('answers the RFC 2782 form, the tag form and named ports', async () => {
    assert.equal((await short(port, '_payments._tcp.service.consul', 'SRV')).length, 3);
    assert.deepEqual(await short(port, '_payments._v2.service.consul', 'SRV'), [
      '1 10 8080 0a010001.addr.dc1.consul.',
    ]);
    assert.deepEqual(await short(port, 'v1.payments.service.consul'), ['10.1.0.2']);
    assert.deepEqual(await short(port, '_grpc._tcp.payments.service.consul', 'SRV'), [
      '1 10 9090 0a010001.addr.dc1.consul.',
    ]);
  });

  it('answers NXDOMAIN with the SOA for unknown names, NOERROR/NODATA for a missing type', async () => {
    const nx = await dig(port, 'nothing.service.consul');
    assert.match(nx, /status: NXDOMAIN/);
    assert.match(nx, /flags: qr aa/);
    assert.match(
      nx,
      /AUTHORITY SECTION:\nconsul\.\s+0\s+IN\s+SOA\s+ns\.consul\. hostmaster\.consul\./,
    );
    const nodata = await dig(port, 'v1.payments.service.consul', 'AAAA');
    assert.match(nodata, /status: NOERROR/);
    assert.match(nodata, /ANSWER: 0, AUTHORITY: 1/);
  });

  it('answers TXT with the instance id and meta, long values split at 255 bytes', async () => {
    const note = 'ü'.repeat(200); // 400 bytes of UTF-8
    await register(agent, {
      service: 'texty',
      id: 'texty-1',
      address: '10.4.0.1',
      port: 80,
      meta: { version: '2.1.0', note },
    });
    const resolver = new Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    const [record] = await resolver.resolveTxt('texty.service.consul');
    assert.deepEqual(record?.slice(0, 2), ['instance=texty-1', 'version=2.1.0']);
    assert.equal(record?.length, 4, 'note=... (405 bytes) takes two strings');
    // c-ares hands TXT bytes to Node as latin1; the bytes are our UTF-8.
    const bytes = Buffer.from(record?.slice(2).join('') ?? '', 'latin1');
    assert.equal(bytes.toString('utf8'), `note=${note}`);
    assert.match(
      await dig(port, '+short', 'texty.service.consul', 'TXT'),
      /"instance=texty-1" "version=2\.1\.0" "note=/,
    );
  });

  // Issue 16: the /v1 adapter's `consul-registered=true` marker leaked into TXT.
  it('leaves the internal consul-* meta markers out of TXT', async () => {
    const r = await http(agent.url, 'PUT', '/v1/agent/service/register', {
      Name: 'consulish',
      ID: 'consulish-1',
      Address: '10.4.0.2',
      Port: 80,
      Meta: { env: 'prod' },
      EnableTagOverride: true,
    });
    assert.equal(r.status, 200, r.text);
    const native = await http(agent.url, 'GET', '/api/v1/instances/consulish-1');
    assert.equal(native.body.instance?.meta?.['consul-registered'], 'true', native.text);
    assert.deepEqual(await short(port, 'consulish.service.consul', 'TXT'), [
      '"instance=consulish-1" "env=prod"',
    ]);
  });

  // Issue 16: HAProxy pairs each Additional record with one SRV record (see dns-haproxy.test.ts).
  it('answers one glue record per SRV answer when instances share an IP', async () => {
    for (const p of [19101, 19102, 19103]) {
      await register(agent, { service: 'same', id: `same-${p}`, address: '127.0.0.1', port: p });
    }
    const out = await dig(port, '_same._tcp.service.consul', 'SRV');
    assert.match(out, /ANSWER: 3, AUTHORITY: 0, ADDITIONAL: 4/, 'three glue records and the OPT');
    const glue = await dig(port, '+noall', '+additional', '_same._tcp.service.consul', 'SRV');
    assert.deepEqual(records(glue), Array(3).fill('7f000001.addr.dc1.consul. 0 IN A 127.0.0.1'));
    const resolver = new Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    const srv = await resolver.resolveSrv('_same._tcp.service.consul');
    assert.deepEqual(srv.map((s) => `${s.port} ${s.name}`).sort(), [
      '19101 7f000001.addr.dc1.consul',
      '19102 7f000001.addr.dc1.consul',
      '19103 7f000001.addr.dc1.consul',
    ]);
  });

  // Issue 16: a CNAME question for a service of hostnames answered NOERROR with no data.
  it('answers CNAME (and A, AAAA, ANY) with the CNAME of a hostname address', async () => {
    await register(agent, { service: 'aliased', address: 'api.example.com', port: 443 });
    for (const type of ['CNAME', 'A', 'AAAA', 'ANY']) {
      const out = await dig(port, '+noall', '+answer', 'aliased.service.consul', type);
      assert.deepEqual(records(out), ['aliased.service.consul. 0 IN CNAME api.example.com.'], type);
    }
    const resolver = new Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    assert.deepEqual(await resolver.resolveCname('aliased.service.consul'), ['api.example.com']);
  });

  it('refuses names outside its domains (no recursors configured)', async () => {
    assert.match(await dig(port, 'example.com'), /status: REFUSED/);
  });

  it('refuses other classes, answers NOTIMP to other opcodes and BADVERS to EDNS version 1', async () => {
    assert.match(await dig(port, 'version.bind', 'TXT', 'CH'), /status: REFUSED/);
    assert.match(await dig(port, '+opcode=2', 'payments.service.consul'), /status: NOTIMP/);
    assert.match(
      await dig(port, '+edns=1', '+noednsneg', 'payments.service.consul'),
      /status: BADVERS/,
    );
  });

  it('answers the alternative domain and mixed case', async () => {
    assert.deepEqual(await short(port, 'PayMents.SERVICE.meshwork'), ['10.1.0.1', '10.1.0.2']);
  });

  it('answers over TCP (+tcp)', async () => {
    const out = await dig(port, '+tcp', 'payments.service.consul', 'SRV');
    assert.match(out, /status: NOERROR/);
    assert.match(out, /ANSWER: 3,/);
  });

  it('sets TC when the answer does not fit 512 bytes, and dig gets it all over TCP', async () => {
    const udp = await dig(port, '+noedns', '+ignore', 'big.service.consul');
    assert.match(udp, /flags: qr aa tc rd;/);
    const answers = Number(/ANSWER: (\d+),/.exec(udp)?.[1]);
    assert.ok(answers > 0 && answers < 60, `truncated to ${answers}`);
    const retried = await dig(port, '+noedns', 'big.service.consul');
    assert.match(retried, /Truncated, retrying in TCP mode/);
    assert.match(retried, /ANSWER: 60,/);
  });

  it('honours the EDNS0 payload size and answers with an OPT record', async () => {
    const out = await dig(port, '+bufsize=4096', 'big.service.consul');
    assert.match(out, /flags: qr aa rd;/, 'no TC: 60 A records fit 4096 bytes');
    assert.match(out, /ANSWER: 60,/);
    assert.match(out, /EDNS: version: 0, flags:; udp: 4096/);
  });

  it('resolves with node:dns Resolver: resolve4 and resolveSrv', async () => {
    const resolver = new Resolver({ timeout: 3000, tries: 1 });
    resolver.setServers([`127.0.0.1:${port}`]);
    assert.deepEqual((await resolver.resolve4('payments.service.consul')).sort(), [
      '10.1.0.1',
      '10.1.0.2',
    ]);
    const srv = await resolver.resolveSrv('_payments._tcp.service.consul');
    assert.deepEqual(srv.map((s) => `${s.priority} ${s.weight} ${s.port} ${s.name}`).sort(), [
      '0 1 8081 0a010002.addr.dc1.consul',
      '0 1 8082 fd000000000000000000000000000003.addr.dc1.consul',
      '1 10 8080 0a010001.addr.dc1.consul',
    ]);
    await assert.rejects(resolver.resolve4('nothing.service.consul'), { code: 'ENOTFOUND' });
  });

  it('drops an instance from the very next answer when it goes critical', async () => {
    await register(agent, {
      service: 'flappy',
      id: 'flappy-1',
      address: '10.3.0.1',
      port: 80,
      checks: [{ ttl: '30s' }],
    });
    await register(agent, { service: 'flappy', id: 'flappy-2', address: '10.3.0.2', port: 80 });
    // A TTL check starts critical: only flappy-2 is served until the first heartbeat.
    assert.deepEqual(await short(port, 'flappy.service.consul'), ['10.3.0.2']);
    const ok = await http(agent.url, 'PUT', '/api/v1/instances/flappy-1/heartbeat', {});
    assert.equal(ok.body.status, 'passing', ok.text);
    assert.deepEqual(await short(port, 'flappy.service.consul'), ['10.3.0.1', '10.3.0.2']);
    const bad = await http(agent.url, 'PUT', '/api/v1/instances/flappy-1/heartbeat', {
      status: 'critical',
    });
    assert.equal(bad.body.status, 'critical', bad.text);
    assert.deepEqual(await short(port, 'flappy.service.consul'), ['10.3.0.2']);
  });

  it('counts answers by transport and rcode, and truncations, in /metrics', async () => {
    const text = (await http(agent.url, 'GET', '/metrics')).text;
    const sample = (re: RegExp): number => Number(re.exec(text)?.[1] ?? Number.NaN);
    assert.ok(sample(/^meshwork_dns_queries_total\{transport="udp",rcode="NOERROR"\} (\d+)$/m) > 5);
    assert.ok(
      sample(/^meshwork_dns_queries_total\{transport="tcp",rcode="NOERROR"\} (\d+)$/m) >= 2,
    );
    assert.ok(
      sample(/^meshwork_dns_queries_total\{transport="udp",rcode="NXDOMAIN"\} (\d+)$/m) >= 1,
    );
    assert.ok(sample(/^meshwork_dns_truncated_total (\d+)$/m) >= 1);
  });

  it('answers PTR for an instance address and A for the node', async () => {
    assert.deepEqual(await short(port, '-x', '10.1.0.2'), ['payments.service.dc1.consul.']);
    assert.deepEqual(await short(port, 'test-node.node.consul'), ['127.0.0.1']);
  });
});

describe('DNS forwarding to recursors', () => {
  let upstream: TestAgent;
  let agent: TestAgent;
  before(async () => {
    upstream = await startTestAgent({ dns: { domain: 'upstream.test' } });
    await register(upstream, { service: 'far', address: '10.9.0.1', port: 80 });
    agent = await startTestAgent({
      dns: { recursors: [`127.0.0.1:${upstream.dns?.port ?? 0}`], recursorTimeoutMs: 2000 },
    });
  });
  after(async () => {
    await agent.stop();
    await upstream.stop();
  });

  it('forwards names outside its domains and relays the answer, with RA set', async () => {
    const out = await dig(agent.dns?.port ?? 0, 'far.service.upstream.test');
    assert.match(out, /status: NOERROR/);
    assert.match(out, /far\.service\.upstream\.test\.\s+0\s+IN\s+A\s+10\.9\.0\.1/);
    const own = await dig(agent.dns?.port ?? 0, 'nothing.service.consul');
    assert.match(own, /flags: qr aa rd ra;/);
  });

  it('forwards over TCP what came over TCP', async () => {
    const out = await dig(agent.dns?.port ?? 0, '+tcp', 'far.service.upstream.test');
    assert.match(out, /far\.service\.upstream\.test\.\s+0\s+IN\s+A\s+10\.9\.0\.1/);
    assert.match(out, /\(TCP\)/);
  });

  it('answers SERVFAIL when no recursor answers', async () => {
    const lonely = await startTestAgent({
      dns: { recursors: ['127.0.0.1:9'], recursorTimeoutMs: 200 },
    });
    try {
      assert.match(await dig(lonely.dns?.port ?? 0, 'example.com'), /status: SERVFAIL/);
      assert.match(await dig(lonely.dns?.port ?? 0, '+tcp', 'example.com'), /status: SERVFAIL/);
    } finally {
      await lonely.stop();
    }
  });
});
