/**
 * @module Every traffic policy of the mesh through real `meshwork sidecar` processes (issue 19):
 * a caller's sidecar (productpage, no app) -> the sidecars of two instances of reviews (v1 and
 * v2, each in front of test/fixtures/policy-app.mjs) -> the apps. Each case applies one file of
 * examples/sidecar/policies/ (the files docs/sidecar.md shows) with `meshwork apply -f`, waits
 * until the sidecars run the new snapshot, and checks the policy from the caller's side. One
 * agent and one set of sidecars serve the whole file; resources are deleted between cases.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { http } from '../helpers/agent.js';
import { runCli, type AgentProcess, type SidecarProcess } from '../helpers/cli.js';
import { MeshFixture } from '../helpers/mesh-fixture.js';
import { until } from '../helpers/until.js';
import { MESH_KIND_INFO, type MeshKind } from '../../src/protocol/mesh/resource.js';

const APP = fileURLToPath(new URL('../fixtures/policy-app.mjs', import.meta.url));
const POLICIES = fileURLToPath(new URL('../../examples/sidecar/policies/', import.meta.url));
const SEED = fileURLToPath(new URL('../fixtures/seed-003-mesh.yaml', import.meta.url));

/** Fast health checks, so the instances pass at once. */

/** What the app (test/fixtures/policy-app.mjs) or a sidecar's error answer holds. */
interface Body {
  name: string;
  url: string;
  headers: Record<string, string>;
  error: { code: string; host: string; policy: string };
}

interface Answer {
  status: number;
  ms: number;
  headers: Record<string, string | string[] | undefined>;
  body: Body;
}

/** An instance of a service: its sidecar and the port of the app behind it. */
interface Instance {
  sidecar: SidecarProcess;
  appPort: number;
}

describe('sidecar policies through real sidecar processes (examples/sidecar/policies)', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  let caller: SidecarProcess;
  let v1: Instance;
  let v2: Instance;
  /** The sidecars whose snapshot the case's resources changed. */
  let changed: SidecarProcess[] = [];

  const startInstance = async (service: string, version: string): Promise<Instance> => {
    const name = `${service}-${version}`;
    const sidecar = await mesh.sidecar(service, {
      app: APP,
      dataDir: name,
      flags: ['--meta', `version=${version}`],
      env: { APP_NAME: name },
    });
    return { sidecar, appPort: sidecar.appPort };
  };

  /** One request through the caller's outbound listener with `Host: <host>`. */
  const send = async (
    host: string,
    path: string,
    headers: Record<string, string> = {},
    method = 'GET',
  ): Promise<Answer> => {
    const t0 = performance.now();
    const r = await http(caller.outboundUrl, method, path, undefined, { host, ...headers });
    const body = r.body as Body;
    return { status: r.status, ms: performance.now() - t0, headers: r.headers, body };
  };

  /** `n` requests, `inFlight` at a time; `pathOf(i)` names each one's path. */
  const load = async (
    n: number,
    inFlight: number,
    pathOf: (i: number) => string,
  ): Promise<Answer[]> => {
    const out: Answer[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < n) {
          const i = next++;
          out.push(await send('reviews', pathOf(i)));
        }
      }),
    );
    return out;
  };

  /** What one instance's app counted for `url` (by = 'url') or every URL it starts (by = 'prefix'). */
  const counted = async (
    inst: Instance,
    url: string,
    by: 'url' | 'prefix' = 'url',
  ): Promise<{ hits: number; headers: Record<string, string> | null }> =>
    (
      await http(
        `http://127.0.0.1:${inst.appPort}`,
        'GET',
        `/_count?${by}=${encodeURIComponent(url)}`,
      )
    ).body as { hits: number; headers: Record<string, string> | null };
  const seenBy = async (inst: Instance, url: string, by: 'url' | 'prefix' = 'url') =>
    (await counted(inst, url, by)).hits;
  const lastHeaders = async (inst: Instance, url: string) => (await counted(inst, url)).headers;
  /** How often the apps of both instances saw `url` (or URLs starting with it). */
  const hits = async (url: string, by: 'url' | 'prefix' = 'url'): Promise<number> =>
    (await seenBy(v1, url, by)) + (await seenBy(v2, url, by));

  const version = async (s: SidecarProcess): Promise<string | null> =>
    ((await http(s.adminUrl, 'GET', '/config_dump')).body?.version as string | null) ?? null;

  /**
   * Applies `file` with `meshwork apply -f` and waits until each of `watch` runs a snapshot
   * newer than the one it ran before.
   */
  const apply = async (file: string, watch: SidecarProcess[] = [caller]): Promise<void> => {
    changed = watch;
    const before = await Promise.all(watch.map(version));
    const r = await runCli(['apply', '-f', file], { MESHWORK_ADDR: agent.url });
    assert.equal(r.code, 0, r.stderr);
    await until(
      async () => (await Promise.all(watch.map(version))).every((v, i) => v !== before[i]),
      10_000,
      `the sidecars ran the snapshot of ${file}`,
    );
  };
  const example = (name: string): string => join(POLICIES, name);

  before(async () => {
    mesh = await MeshFixture.start('sidecar-policies-');
    agent = mesh.agent;
    [v1, v2, caller] = await Promise.all([
      startInstance('reviews', 'v1'),
      startInstance('reviews', 'v2'),
      // The caller has no app: its outbound listener is what the test calls.
      mesh.sidecar('productpage'),
    ]);
    // Both instances in rotation at the caller.
    const names = new Set<string>();
    await until(
      async () => {
        const r = await send('reviews', '/warm');
        if (r.status === 200) names.add(r.body.name);
        return names.size === 2;
      },
      15_000,
      'both instances of reviews reachable through the caller',
    );
  });

  after(async () => {
    await mesh?.stop();
  });

  // Between cases: every mesh resource deleted (VirtualServices first: they refer to
  // DestinationRules), and the sidecars back on the default routes.
  afterEach(async () => {
    const before = await Promise.all(changed.map(version));
    const all = (await http(agent.url, 'GET', '/api/v1/mesh/resources')).body.resources as {
      resource: { kind: string; metadata: { name: string; namespace: string } };
    }[];
    if (all.length === 0) return;
    const order = (k: string): number => (k === 'VirtualService' ? 0 : 1);
    for (const { resource: r } of [...all].sort(
      (a, b) => order(a.resource.kind) - order(b.resource.kind),
    )) {
      const { plural } = MESH_KIND_INFO[r.kind as MeshKind];
      const d = await http(
        agent.url,
        'DELETE',
        `/api/v1/mesh/resources/${plural}/${r.metadata.namespace}/${r.metadata.name}`,
      );
      assert.equal(d.status, 200, JSON.stringify(d.body));
    }
    await until(
      async () => (await Promise.all(changed.map(version))).every((v, i) => v !== before[i]),
      10_000,
      'the sidecars ran the snapshot without the resources',
    );
  });

  it('weighted split: 80/20 to the subsets, within 3% over 2,000 requests', async () => {
    await apply(example('weighted-split.yaml'));
    const answers = await load(2000, 40, () => '/split');
    assert.ok(answers.every((a) => a.status === 200));
    const toV2 = answers.filter((a) => a.body.name === 'reviews-v2').length;
    assert.ok(Math.abs(toV2 / 2000 - 0.2) <= 0.03, `${toV2} of 2000 to v2`);
  });

  it('header match: x-user: jason reaches v2, everyone else v1', async () => {
    await apply(example('header-match.yaml'));
    for (let i = 0; i < 10; i++) {
      assert.equal((await send('reviews', '/m', { 'x-user': 'jason' })).body.name, 'reviews-v2');
      assert.equal((await send('reviews', '/m', { 'x-user': 'ada' })).body.name, 'reviews-v1');
      assert.equal((await send('reviews', '/m')).body.name, 'reviews-v1');
    }
  });

  it('retries: marked with x-meshwork-attempt, not repeated downstream, and stopped by the budget', async () => {
    await apply(example('retries.yaml'));
    // One failing call: tried 4 times (attempts: 3), each marked.
    const once = await send('reviews', '/status/503?first');
    assert.equal(once.status, 503);
    assert.equal(await hits('/status/503?first'), 4);
    const lastTry = await Promise.all([v1, v2].map((i) => lastHeaders(i, '/status/503?first')));
    assert.ok(
      lastTry.some((h) => h?.['x-meshwork-attempt'] === '4'),
      JSON.stringify(lastTry.map((h) => h?.['x-meshwork-attempt'])),
    );
    // A call an upstream layer already retried (attempt 2) is sent once.
    const marked = await send('reviews', '/status/503?marked', { 'x-meshwork-attempt': '2' });
    assert.equal(marked.status, 503);
    assert.equal(await hits('/status/503?marked'), 1);
    // A run of failing calls spends the budget: 20% of the window's calls + 10 (1/s over 10 s).
    const n = 40;
    for (let i = 0; i < n; i++)
      assert.equal((await send('reviews', `/status/503?run=${i}`)).status, 503);
    const perCall = await Promise.all(
      Array.from({ length: n }, (_, i) => hits(`/status/503?run=${i}`)),
    );
    // The budget is the route's, new with the snapshot: the window holds these n + 2 calls,
    // which may take 0.2 * (n + 2) + 10 retries in all (3 of them went to the first call).
    const retries = perCall.reduce((a, b) => a + b, 0) - n + 3;
    assert.ok(retries >= 10 && retries <= 0.2 * (n + 2) + 10, `${retries} retries`);
    // Once spent, only the 20% trickles in: the last 10 calls, which wanted 30 retries, got
    // at most 2 (one per 5 calls) plus a fraction left over.
    const late = perCall.slice(-10).reduce((a, b) => a + b, 0) - 10;
    assert.ok(late <= 3, `the last 10 calls got ${late} retries: ${JSON.stringify(perCall)}`);
  });

  it('without a VirtualService: Istio’s default retries, 2 on a 503 and none on a 502', async () => {
    assert.equal((await send('reviews', '/status/503?default')).status, 503);
    assert.equal(await hits('/status/503?default'), 3);
    assert.equal((await send('reviews', '/status/502?default')).status, 502);
    assert.equal(await hits('/status/502?default'), 1);
  });

  it('timeouts: the route timeout answers 504; a try past perTryTimeout is retried', async () => {
    await apply(example('timeouts.yaml'));
    // Three tries of 400 ms would take 1.2 s: the route's 1 s ends the call first.
    const slow = await send('reviews', '/slow?ms=5000');
    assert.equal(slow.status, 504, JSON.stringify(slow.body));
    assert.equal(slow.body.error.code, 'MESHWORK_ERR_PROXY_UPSTREAM_TIMEOUT');
    assert.ok(slow.ms >= 950 && slow.ms < 4000, `answered in ${slow.ms} ms`);
    // 400 + 400 ms and a third try cut short (unless backoff and a busy machine leave it no
    // time): the per-try timeouts were retried, within the route's timeout.
    const tries = await until(
      async () => ((await hits('/slow?ms=5000')) >= 2 ? hits('/slow?ms=5000') : undefined),
      5_000,
      'the tries reached the app',
    );
    assert.ok(tries === 2 || tries === 3, `${tries} tries`);
    // The first try is slow, the retry answers at once: 200 after one per-try timeout.
    const first = await send('reviews', '/slow-first?ms=5000');
    assert.equal(first.status, 200);
    assert.equal(first.body.headers['x-meshwork-attempt'], '2');
    assert.ok(first.ms >= 390 && first.ms < 4000, `answered in ${first.ms} ms`);
  });

  it('fault injection: delays and aborts about their percentages (within 3%)', async () => {
    await apply(example('fault-injection.yaml'));
    // p = 0.1 over 2,000 requests: sigma = sqrt(0.1 * 0.9 / 2000) = 0.0067, so 3% is 4.5 sigma.
    const n = 2000;
    const answers = await load(n, 50, (i) => `/fault?i=${i}`);
    const aborted = answers.filter((a) => a.status === 503);
    assert.ok(aborted.every((a) => a.body.error.code === 'MESHWORK_ERR_PROXY_FAULT_ABORT'));
    assert.equal(answers.filter((a) => a.status === 200).length, n - aborted.length);
    assert.ok(Math.abs(aborted.length / n - 0.1) <= 0.03, `${aborted.length} aborted`);
    // A delayed request takes at least 700 ms (timers fire no earlier, give or take 1 ms); a
    // request not delayed through two sidecars takes a few ms.
    const delayed = answers.filter((a) => a.ms >= 695).length;
    assert.ok(Math.abs(delayed / n - 0.1) <= 0.03, `${delayed} delayed`);
    // The aborted ones never reached reviews.
    assert.equal(await hits('/fault?', 'prefix'), n - aborted.length);
  });

  it('mirroring: v2 gets a copy, the caller only v1’s answer, and a slow mirror slows nothing', async () => {
    await apply(example('mirroring.yaml'));
    const r = await send('reviews', '/mirrored?x=1');
    assert.equal(r.status, 200);
    assert.equal(r.body.name, 'reviews-v1');
    await until(
      async () => (await seenBy(v2, '/mirrored?x=1')) === 1,
      5_000,
      'the copy reached v2',
    );
    assert.equal((await lastHeaders(v2, '/mirrored?x=1'))?.host, 'reviews-shadow');
    assert.equal(await seenBy(v1, '/mirrored?x=1'), 1);
    // The mirror takes 3 s to answer each copy; the originals come back at once.
    for (let i = 0; i < 5; i++) {
      const t = await send('reviews', `/m?shadowms=3000&i=${i}`);
      assert.equal(t.body.name, 'reviews-v1');
      assert.ok(t.ms < 1_500, `answered in ${t.ms} ms`);
    }
    await until(async () => (await seenBy(v2, '/m?shadowms=3000&i=4')) === 1, 5_000, 'copies sent');
    // A request with a body is not copied (its body streams to the original only): counted.
    const posted = await http(caller.outboundUrl, 'POST', '/posted', 'payload', {
      host: 'reviews',
    });
    assert.equal((posted.body as Body).name, 'reviews-v1');
    const events = (await http(caller.adminUrl, 'GET', '/metrics')).text
      .split('\n')
      .filter((l) => l.includes('policy_events_total{'));
    assert.ok(
      events.some((l) => /event="mirror_skipped"\} 1$/.test(l)),
      events.join('\n'),
    );
    assert.equal(await seenBy(v2, '/posted'), 0);
  });

  it('connection-pool limits: past 1 in flight + 1 pending, 503 overflow at once', async () => {
    await apply(example('connection-pool.yaml'));
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => send('reviews', `/slow?ms=1500&i=${i}`)),
    );
    const ok = answers.filter((a) => a.status === 200);
    const over = answers.filter((a) => a.status === 503);
    assert.equal(ok.length, 2, JSON.stringify(answers.map((a) => a.status)));
    assert.equal(over.length, 4);
    for (const a of over) {
      assert.equal(a.body.error.code, 'MESHWORK_ERR_PROXY_OVERFLOW');
      assert.ok(a.ms < 1_000, `overflow answered in ${a.ms} ms`);
    }
    // Serves again once the held ones are done.
    assert.equal((await send('reviews', '/after')).status, 200);
  });

  it('local rate limit: past each instance’s 10 tokens, 429 with retry-after', async () => {
    // Both instances in the caller's rotation (round robin), so each bucket is emptied.
    const before = new Set((await load(6, 1, (i) => `/rotation?i=${i}`)).map((a) => a.body.name));
    assert.equal(before.size, 2, 'both instances in rotation');
    await apply(example('rate-limit.yaml'), [v1.sidecar, v2.sidecar]);
    const answers = await load(60, 5, (i) => `/limited?i=${i}`);
    const ok = answers.filter((a) => a.status === 200).length;
    const limited = answers.filter((a) => a.status === 429);
    // Two instances, a bucket of 10 each, refilled after a minute.
    assert.equal(ok, 20);
    assert.equal(limited.length, 40);
    for (const a of limited) {
      assert.equal(a.body.error.code, 'MESHWORK_ERR_PROXY_RATE_LIMITED');
      assert.ok(Number(a.headers['retry-after']) >= 1, String(a.headers['retry-after']));
    }
    assert.equal(await hits('/limited?', 'prefix'), 20);
  });

  it('local rate limit on the caller’s side (host): past its 5 tokens, 429 from the caller’s sidecar', async () => {
    await apply(example('rate-limit-outbound.yaml'));
    const answers = await load(8, 1, (i) => `/calls?i=${i}`);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200, 429, 429, 429],
    );
    for (const a of answers.slice(5)) {
      assert.equal(a.body.error.code, 'MESHWORK_ERR_PROXY_RATE_LIMITED');
      assert.ok(Number(a.headers['retry-after']) >= 1, String(a.headers['retry-after']));
    }
    assert.equal(await hits('/calls?', 'prefix'), 5);
  });

  it('response cache: a fresh GET is answered from the cache; no-cache, no-store and POST bypass it', async () => {
    await apply(example('response-cache.yaml'));
    const first = await send('reviews', '/cacheable');
    assert.equal(first.headers['x-meshwork-cache'], 'miss');
    const second = await send('reviews', '/cacheable');
    assert.equal(second.headers['x-meshwork-cache'], 'hit');
    assert.deepEqual(second.body, first.body);
    assert.equal(await hits('/cacheable'), 1);
    for (const cc of ['no-cache', 'no-store']) {
      const r = await send('reviews', '/cacheable', { 'cache-control': cc });
      assert.equal(r.headers['x-meshwork-cache'], 'bypass', cc);
    }
    const posted = await send('reviews', '/cacheable', {}, 'POST');
    assert.equal(posted.status, 200);
    assert.notEqual(posted.headers['x-meshwork-cache'], 'hit');
    assert.equal(await hits('/cacheable'), 4);
    // An answer without max-age is not kept.
    await send('reviews', '/plain');
    assert.equal((await send('reviews', '/plain')).headers['x-meshwork-cache'], 'miss');
    assert.equal(await hits('/plain'), 2);
  });

  it('egress REGISTRY_ONLY: other hosts refused with a 502 naming them; the ServiceEntry host passes', async () => {
    await apply(example('egress-registry-only.yaml'));
    const refused = await send('example.org', '/');
    assert.equal(refused.status, 502);
    assert.equal(refused.body.error.code, 'MESHWORK_ERR_PROXY_EGRESS_DENIED');
    assert.equal(refused.body.error.host, 'example.org');
    assert.equal(refused.body.error.policy, 'REGISTRY_ONLY');
    const local = await send(`localhost:${v1.appPort}`, '/egress');
    assert.equal(local.status, 200);
    assert.equal(local.body.name, 'reviews-v1');
    // The mesh's services are still reachable.
    assert.equal((await send('reviews', '/inside')).status, 200);
  });

  it('malformed requests get 400 and the sidecars keep serving', async () => {
    const raw = (url: string, bytes: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const u = new URL(url);
        const s = connect({ host: u.hostname, port: Number(u.port) });
        let got = '';
        s.on('data', (d) => (got += d.toString()));
        s.on('close', () => resolve(got));
        s.on('error', reject);
        s.write(bytes);
      });
    for (const url of [caller.outboundUrl, v1.sidecar.inboundUrl]) {
      const garbage = await raw(url, 'GET /\x01 HTTP/1.1\r\nHost: reviews\r\n\r\n');
      assert.match(garbage, /^HTTP\/1\.1 400 /);
      const badHeader = await raw(url, 'GET / HTTP/1.1\r\nHost: reviews\r\nBad Header: x\r\n\r\n');
      assert.match(badHeader, /^HTTP\/1\.1 400 /);
    }
    assert.equal((await send('reviews', '/still')).status, 200);
    const direct = await http(v1.sidecar.inboundUrl, 'GET', '/still');
    assert.equal(direct.status, 200);
  });
});

describe('the seed 003 canary (test/fixtures/seed-003-mesh.yaml) through real sidecars, with curl', () => {
  let mesh: MeshFixture;
  let agent: AgentProcess;
  const procs: SidecarProcess[] = [];

  /** Applies the seed's documents named `names`, as the seed wrote them, byte for byte. */
  const applySeedDocs = async (file: string, names: readonly string[]): Promise<void> => {
    const text = readFileSync(SEED, 'utf8');
    const docs = parseAllDocuments(text).filter((d) =>
      names.includes(String(d.getIn(['metadata', 'name']))),
    );
    assert.equal(docs.length, names.length);
    const path = join(mesh.dir, file);
    writeFileSync(path, docs.map((d) => text.slice(d.range[0], d.range[1])).join('\n---\n'));
    const r = await runCli(['apply', '-f', path], { MESHWORK_ADDR: agent.url });
    assert.equal(r.code, 0, r.stderr);
  };
  /** The real curl through the caller's (pedido-service's) outbound port. */
  const curl = async (...headers: string[]): Promise<{ name: string; url: string }> => {
    const caller = procs[2] as SidecarProcess;
    const args = ['-sS', '--max-time', '5', ...headers.flatMap((h) => ['-H', h])];
    const { stdout } = await promisify(execFile)('curl', [
      ...args,
      `${caller.outboundUrl}/usuarios/1`,
    ]);
    return JSON.parse(stdout) as { name: string; url: string };
  };

  before(async () => {
    mesh = await MeshFixture.start('sidecar-seed-');
    agent = mesh.agent;
  });
  after(async () => {
    await mesh?.stop();
  });

  it('curl -H "Host: usuario-service" reaches v1, and with x-canary: true v2', async () => {
    // The canary's two documents as the seed wrote them, byte for byte. The file's
    // PeerAuthentication (STRICT) and AuthorizationPolicies are issue 20's: a sidecar refuses
    // a snapshot it cannot enforce whole.
    await applySeedDocs('canary.yaml', ['usuario-service-canary', 'usuario-service-subsets']);

    const start = (version: string): Promise<SidecarProcess> =>
      mesh.sidecar('usuario-service', {
        app: APP,
        dataDir: version,
        flags: ['--meta', `version=${version}`],
        env: { APP_NAME: `usuario-${version}` },
      });
    procs.push(
      ...(await Promise.all([
        start('v1'),
        start('v2'),
        mesh.sidecar('pedido-service', { dataDir: 'pedido' }),
      ])),
    );
    const caller = procs[2] as SidecarProcess;
    // Both instances registered, passing and in the caller's snapshot.
    await until(
      async () => {
        type Endpoint = { status: string; meta: Record<string, string> };
        const dump = (await http(caller.adminUrl, 'GET', '/config_dump')).body as {
          snapshot: { clusters: { service: string; endpoints: Endpoint[] }[] } | null;
        };
        const versions = new Set(
          (dump.snapshot?.clusters ?? [])
            .filter((c) => c.service === 'usuario-service')
            .flatMap((c) => c.endpoints)
            .filter((e) => e.status === 'passing')
            .map((e) => e.meta.version),
        );
        return versions.has('v1') && versions.has('v2');
      },
      20_000,
      'both instances passing in the caller’s snapshot',
    );
    for (let i = 0; i < 10; i++) {
      const plain = await curl('Host: usuario-service');
      assert.equal(plain.name, 'usuario-v1');
      assert.equal(plain.url, '/usuarios/1');
      assert.equal((await curl('Host: usuario-service', 'x-canary: true')).name, 'usuario-v2');
    }
  });

  it('the seed’s traffic VirtualService (no hosts, weights on single destinations) does the same', async () => {
    const caller = procs[2] as SidecarProcess;
    const version = async (): Promise<string> =>
      (await http(caller.adminUrl, 'GET', '/config_dump')).body.version as string;
    const before = await version();
    const del = await runCli(['delete', 'virtualservice', 'usuario-service-canary'], {
      MESHWORK_ADDR: agent.url,
    });
    assert.equal(del.code, 0, del.stderr);
    await applySeedDocs('traffic.yaml', ['usuario-service-routing']);
    await until(async () => (await version()) !== before, 10_000, 'the new snapshot in force');
    for (let i = 0; i < 10; i++) {
      assert.equal((await curl('Host: usuario-service')).name, 'usuario-v1');
      assert.equal((await curl('Host: usuario-service', 'x-canary: true')).name, 'usuario-v2');
    }
  });
});
