/** The README's tour runs as written (against an agent on a free port instead of 8500). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { BIN, spawnAgent, type AgentProcess } from '../helpers/cli.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');
const tour = readme.slice(readme.indexOf('## A five-minute tour'), readme.indexOf('## Docs'));
const blocks = [...tour.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');

describe('README tour', () => {
  let agent: AgentProcess;
  before(async () => {
    agent = await spawnAgent(['--dev']);
  });
  after(async () => {
    agent.child.kill('SIGTERM');
    await agent.exited;
  });

  const run = (script: string): { code: number | null; out: string } => {
    const { host } = new URL(agent.url);
    const adapted = script
      .replaceAll('localhost:8500', host)
      .replaceAll('-p 8600', `-p ${String(agent.dnsPort)}`)
      .replaceAll('npx meshwork', `node ${BIN}`)
      // Streams run until interrupted; the tour shows them, the test reads their first second.
      .replaceAll('curl -sN', 'curl -sN --max-time 1')
      .replace(/^(node \S+ watch .*)$/gm, 'timeout 1 $1 || test $? -eq 124');
    const r = spawnSync('bash', ['-euo', 'pipefail', '-c', adapted], {
      cwd: root,
      env: { ...process.env, MESHWORK_ADDR: agent.url },
      encoding: 'utf8',
      timeout: 30_000,
    });
    return { code: r.status, out: `${r.stdout}\n${r.stderr}` };
  };

  it('has the curl block, the DNS block, the CLI block, the Consul block and the Eureka block', () => {
    assert.equal(blocks.length, 5);
  });

  it('runs the curl block: register, heartbeat, queries, blocking query, stream', () => {
    const r = run((blocks[0] ?? '').replace(/^(curl -sN .*)$/m, '$1 || test $? -eq 28'));
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /"id":"payments-1"/);
    assert.match(r.out, /"status":"passing"/);
    assert.match(r.out, /event: snapshot/);
  });

  it('runs the DNS block: A and SRV of the instance the curl block registered', () => {
    const r = run(blocks[1] ?? '');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^127\.0\.0\.1$/m);
    assert.match(r.out, /^0 1 8080 7f000001\.addr\.dc1\.consul\.$/m);
  });

  it('runs the CLI block', () => {
    const r = run(blocks[2] ?? '');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /registered web-/);
    assert.match(r.out, /^SERVICE\s+INSTANCES/m);
    // payments-1 came from the curl block: the apply takes it over.
    assert.match(r.out, /applied examples: 1 created, 1 updated/);
    // Mesh resources: a dry run shows the new ones as diffs; the apply stores them.
    assert.match(
      r.out,
      /^virtualservice\.networking\.istio\.io\/default\/payments-canary created \(dry run\)$/m,
    );
    assert.match(r.out, /^\+kind: VirtualService$/m);
    assert.match(r.out, /^destinationrule\.networking\.istio\.io\/default\/payments created$/m);
    assert.match(r.out, /^payments-canary\s+default\s+\d+\s+\d+$/m);
  });

  it('runs the Consul block: register, TTL pass, health, native read, KV, deregister', () => {
    const r = run(blocks[3] ?? '');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /"ID":"shop-1"/);
    assert.match(
      r.out,
      /"CheckID":"service:shop-1","Name":"Service 'shop' check","Status":"passing"/,
    );
    assert.match(r.out, /"id":"shop-1"/);
    assert.match(r.out, /truev1/);
  });

  it('runs the Eureka block: register, renew, Eureka and Consul reads, status override', () => {
    const r = run(blocks[4] ?? '');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /"name":"ORDERS"/);
    assert.match(r.out, /"ID":"orders:orders-1","Service":"orders"/);
    assert.match(r.out, /"status":"OUT_OF_SERVICE"/);
  });
});
