/**
 * `meshwork apply -f`, `get` and `delete` for mesh resources, end to end with the real binary
 * against real agents: the seed's YAML applies unchanged, files apply all or nothing, dry runs
 * store nothing and show a diff, `get -o yaml` applies back unchanged, and resources survive
 * kill -9 (SQLite) and are seen by a second agent (etcd).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { RunningAgent } from '../../src/cli/agent-runtime.js';
import { startClusterAgent } from '../helpers/agent.js';
import { runCli, spawnAgent, useAgentProcess } from '../helpers/cli.js';
import { startEtcd, type EtcdProcess } from '../helpers/etcd.js';
import { until } from '../helpers/until.js';

const SEED = fileURLToPath(new URL('../fixtures/seed-003-mesh.yaml', import.meta.url));

/** The resources of the seed, as `apply` names them, in the order the answer lists them. */
const SEED_RESOURCES = [
  'authorizationpolicy.security.istio.io/default/usuario-service-authz',
  'authorizationpolicy.security.istio.io/default/usuario-service-policy',
  'destinationrule.networking.istio.io/default/usuario-service-subsets',
  'peerauthentication.security.istio.io/default/default',
  'virtualservice.networking.istio.io/default/usuario-service-canary',
  'virtualservice.networking.istio.io/default/usuario-service-routing',
];

const CANARY = (weights: [number, number]) => `# canary
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: shop-subsets
spec:
  host: shop
  subsets:
  - name: v1
    labels: { version: v1 }
  - name: v2
    labels: { version: v2 }
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: shop-canary
spec:
  hosts: [shop]
  http:
  - route:
    - destination: { host: shop, subset: v1 }
      weight: ${weights[0]}
    - destination: { host: shop, subset: v2 }
      weight: ${weights[1]}
`;

const SHOP_INSTANCES = `set: shop
services:
  - { service: shop, id: shop-1, address: 10.0.0.1, port: 80, meta: { version: v1 } }
  - { service: shop, id: shop-2, address: 10.0.0.2, port: 80, meta: { version: v2 } }
`;

describe('meshwork apply, get and delete (mesh resources)', () => {
  const cli = useAgentProcess(['--dev']);
  const file = (name: string, text: string): string => {
    const path = join(cli.dir, name);
    writeFileSync(path, text);
    return path;
  };
  const names = async (kind: string): Promise<string[]> => {
    const r = await runCli(['get', kind, '-o', 'json'], cli.env);
    assert.equal(r.code, 0, r.stderr);
    return (
      JSON.parse(r.stdout) as { resources: { resource: { metadata: { name: string } } }[] }
    ).resources.map((s) => s.resource.metadata.name);
  };

  it('applies the seed YAML unchanged, with warnings naming the Istio spelling', async () => {
    const r = await runCli(['apply', '-f', SEED], cli.env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout.trim().split('\n').sort(),
      SEED_RESOURCES.map((l) => `${l} created`),
    );
    const warnings = r.stderr.trim().split('\n');
    for (const w of warnings) assert.match(w, /^warning: \S+seed-003-mesh\.yaml: document \d/);
    const about = (re: RegExp): boolean => warnings.some((w) => re.test(w));
    // A VirtualService without hosts takes its destinations' host.
    assert.ok(
      about(/document 1 \(VirtualService\/default\/usuario-service-routing\): spec\.hosts: /),
      r.stderr,
    );
    assert.ok(
      about(/document 5 \(VirtualService\/default\/usuario-service-canary\): spec\.hosts: /),
      r.stderr,
    );
    // A weight on a route's only destination is ignored, and the warning says so.
    assert.ok(about(/document 5 \(\S+\): spec\.http\[0\]\.route\[0\]\.weight: ignored/), r.stderr);
    // circuitBreaker is read as outlierDetection.
    assert.ok(
      about(
        /document 6 \(DestinationRule\/default\/usuario-service-subsets\): \S*circuitBreaker: read as outlierDetection/,
      ),
      r.stderr,
    );

    const again = await runCli(['apply', '-f', SEED], cli.env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(
      again.stdout.trim().split('\n').sort(),
      SEED_RESOURCES.map((l) => `${l} unchanged`),
    );
  });

  it('applies a file mixing instances and resources, both', async () => {
    const r = await runCli(
      ['apply', '-f', file('mixed.yaml', `${SHOP_INSTANCES}---\n${CANARY([90, 10])}`)],
      cli.env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^destinationrule\.networking\.istio\.io\/default\/shop-subsets created$/m,
    );
    assert.match(
      r.stdout,
      /^virtualservice\.networking\.istio\.io\/default\/shop-canary created$/m,
    );
    assert.match(
      r.stdout,
      /^applied shop: 2 created, 0 updated, 0 unchanged, 0 deleted \(index \d+\)$/m,
    );
    const inst = await runCli(['instances', 'shop', '--json'], cli.env);
    assert.deepEqual(
      (JSON.parse(inst.stdout) as { instances: { id: string }[] }).instances.map((i) => i.id),
      ['shop-1', 'shop-2'],
    );
    assert.ok((await names('virtualservices')).includes('shop-canary'));
  });

  it('stores nothing from a file with one bad document, and names every problem', async () => {
    const bad = `${SHOP_INSTANCES.replace(/shop/g, 'atomic')}---
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: { name: atomic-good }
spec:
  host: atomic
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: { name: atomic-bad }
spec:
  hosts: [atomic]
  http:
  - route:
    - destination: { host: atomic, subset: v1 }
      weight: 50
    - destination: { host: atomic, subset: v1 }
      weight: lots
`;
    const path = file('atomic.yaml', bad);
    const r = await runCli(['apply', '-f', path], cli.env);
    assert.equal(r.code, 2, r.stdout);
    assert.match(
      r.stderr,
      new RegExp(
        `^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: document 3 \\(VirtualService/default/atomic-bad\\): spec\\.http\\[0\\]\\.route\\[1\\]\\.weight: \\S`,
        'm',
      ),
    );
    assert.equal(r.stdout, '');
    assert.ok(
      !(await names('destinationrules')).includes('atomic-good'),
      'the good resource is not stored',
    );
    const inst = await runCli(['instances', 'atomic', '--json'], cli.env);
    assert.deepEqual((JSON.parse(inst.stdout) as { instances: unknown[] }).instances, []);
  });

  it('refuses a route to a subset no DestinationRule defines, naming its path', async () => {
    const r = await runCli(
      [
        'apply',
        '-f',
        file(
          'orphan.yaml',
          CANARY([50, 50]).replace(/shop/g, 'orphan').replace('name: v2\n', 'name: v9\n'),
        ),
      ],
      cli.env,
    );
    assert.equal(r.code, 2, r.stdout);
    assert.match(
      r.stderr,
      /orphan\.yaml: document 2 \(VirtualService\/default\/orphan-canary\): spec\.http\[0\]\.route\[1\]\.destination\.subset: .*"v2"/,
    );
    assert.ok(!(await names('destinationrules')).includes('orphan-subsets'));
  });

  it('stores nothing on --dry-run and shows the diff', async () => {
    const path = file(
      'dry.yaml',
      `${CANARY([20, 80])}---
apiVersion: meshwork.dev/v1
kind: RetryBudget
metadata: { name: shop-budget }
spec: { host: shop, budgetPercent: 20 }
`,
    );
    const before = await runCli(['get', 'vs', 'shop-canary', '-o', 'yaml'], cli.env);
    assert.equal(before.code, 0, before.stderr);
    const r = await runCli(['apply', '-f', path, '--dry-run'], cli.env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^virtualservice\.networking\.istio\.io\/default\/shop-canary configured \(dry run\)$/m,
    );
    assert.match(
      r.stdout,
      /^destinationrule\.networking\.istio\.io\/default\/shop-subsets unchanged \(dry run\)$/m,
    );
    assert.match(r.stdout, /^-\s+weight: 90$/m);
    assert.match(r.stdout, /^\+\s+weight: 20$/m);
    assert.match(
      r.stdout,
      /^retrybudget\.meshwork\.dev\/default\/shop-budget created \(dry run\)$/m,
    );
    assert.match(
      r.stdout,
      /^--- \/dev\/null\n\+\+\+ retrybudget\.meshwork\.dev\/default\/shop-budget \(\S+dry\.yaml\)\n@@ -0,0 \+1,\d+ @@\n\+apiVersion: meshwork\.dev\/v1\n\+kind: RetryBudget\n/m,
    );
    const after = await runCli(['get', 'vs', 'shop-canary', '-o', 'yaml'], cli.env);
    assert.equal(after.stdout, before.stdout, 'nothing stored');
    assert.ok(!(await names('retrybudgets')).includes('shop-budget'));
  });

  it('prints YAML with get -o yaml that applies back unchanged', async () => {
    const y = await runCli(['get', 'virtualservices', '-o', 'yaml'], cli.env);
    assert.equal(y.code, 0, y.stderr);
    assert.match(y.stdout, /^---\napiVersion: /);
    const back = await runCli(['apply', '-f', file('back.yaml', y.stdout)], cli.env);
    assert.equal(back.code, 0, back.stderr);
    const lines = back.stdout.trim().split('\n');
    assert.ok(lines.length >= 3, back.stdout);
    for (const l of lines)
      assert.match(l, /^virtualservice\.networking\.istio\.io\/\S+ unchanged$/);

    const table = await runCli(['get', 'vs'], cli.env);
    assert.match(table.stdout, /^NAME\s+NAMESPACE\s+CREATED-INDEX\s+MODIFIED-INDEX\n/);
    assert.match(table.stdout, /^shop-canary\s+default\s+\d+\s+\d+$/m);
    const one = await runCli(['get', 'VirtualService', 'shop-canary', '-n', 'default'], cli.env);
    assert.equal(one.stdout.trim().split('\n').length, 2);
  });

  it('deletes a resource; get and delete of an absent one exit 1, an unknown kind 2', async () => {
    const d = await runCli(['delete', 'virtualservices', 'shop-canary'], cli.env);
    assert.equal(d.code, 0, d.stderr);
    assert.match(
      d.stdout,
      /^virtualservice\.networking\.istio\.io\/default\/shop-canary deleted \(index \d+\)\n$/,
    );
    const gone = await runCli(['get', 'vs', 'shop-canary'], cli.env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /VirtualService\/default\/shop-canary not found/);
    const again = await runCli(['delete', 'vs', 'shop-canary'], cli.env);
    assert.equal(again.code, 1);
    const unknown = await runCli(['get', 'gateways'], cli.env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /"gateways".*virtualservices/);
  });

  it('keeps the first apply format working as before', async () => {
    const r = await runCli(
      [
        'apply',
        '-f',
        file(
          'old.yaml',
          'services:\n  - { service: old, id: old-1, address: 10.0.0.1, port: 80 }\n',
        ),
        '--set',
        'old-set',
        '--json',
      ],
      cli.env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), {
      ...JSON.parse(r.stdout),
      set: 'old-set',
      created: ['old-1'],
    });
    const broken = await runCli(
      ['apply', '-f', file('broken.yaml', 'a: 1\n---\nservices: [ {unclosed\n')],
      cli.env,
    );
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /cannot read \S+broken\.yaml: line \d+, column \d+: /);
  });
});

describe('mesh resources across restarts and agents', () => {
  it('survive kill -9 of the agent (SQLite)', { timeout: 60_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'meshwork-mesh-kill9-'));
    try {
      const first = await spawnAgent(['--data-dir', dataDir, '--log-level', 'warn']);
      const applied = await runCli(['apply', '-f', SEED], { MESHWORK_ADDR: first.url });
      assert.equal(applied.code, 0, applied.stderr);
      first.child.kill('SIGKILL');
      assert.equal(await first.exited, 'SIGKILL');
      const second = await spawnAgent(['--data-dir', dataDir, '--log-level', 'warn']);
      try {
        const env = { MESHWORK_ADDR: second.url };
        const again = await runCli(['apply', '-f', SEED], env);
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(
          again.stdout.trim().split('\n').sort(),
          SEED_RESOURCES.map((l) => `${l} unchanged`),
        );
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  describe('two agents over one etcd', () => {
    let etcd: EtcdProcess;
    let a: RunningAgent;
    let b: RunningAgent;
    before(async () => {
      etcd = await startEtcd();
      const prefix = `/mesh-cli-test-${process.pid}/`;
      a = await startClusterAgent([etcd.endpoint], 'agent-a', prefix);
      b = await startClusterAgent([etcd.endpoint], 'agent-b', prefix);
    });
    after(async () => {
      await a.close();
      await b.close();
      await etcd.stop();
    });

    it('serves through B what was applied through A', async () => {
      const applied = await runCli(['apply', '-f', SEED], { MESHWORK_ADDR: a.url });
      assert.equal(applied.code, 0, applied.stderr);
      const seen = await runCli(['get', 'dr', 'usuario-service-subsets', '-o', 'yaml'], {
        MESHWORK_ADDR: b.url,
      });
      assert.equal(seen.code, 0, seen.stderr);
      assert.match(seen.stdout, /^kind: DestinationRule$/m);
      const fromA = await runCli(['get', 'dr', 'usuario-service-subsets', '-o', 'yaml'], {
        MESHWORK_ADDR: a.url,
      });
      assert.equal(seen.stdout, fromA.stdout);
      const del = await runCli(['delete', 'vs', 'usuario-service-routing'], {
        MESHWORK_ADDR: b.url,
      });
      assert.equal(del.code, 0, del.stderr);
      // A learns of B's delete through its etcd watch: wait for it, with a bound.
      await until(
        async () => {
          const list = await runCli(['get', 'vs', '-o', 'json'], { MESHWORK_ADDR: a.url });
          const left = (
            JSON.parse(list.stdout) as { resources: { resource: { metadata: { name: string } } }[] }
          ).resources.map((s) => s.resource.metadata.name);
          return left.length === 1 && left[0] === 'usuario-service-canary';
        },
        10_000,
        'deleted through A',
      );
    });
  });
});
