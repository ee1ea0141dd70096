/** @module Unit tests of SelfRegistration: backoff, heartbeats and re-registration, on FakeClock. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors, isMeshError } from '../../../src/core/errors.js';
import type { RegistryClient } from '../../../src/client/registry-client.js';
import { SelfRegistration, type HeartbeatReport } from '../../../src/client/self-registration.js';
import { FakeClock, flushMicrotasks } from '../../../src/testing/fake-clock.js';

/** A registry that records calls; `down` makes every call fail as unreachable. */
class FakeRegistry {
  down = false;
  known = new Set<string>();
  readonly calls: { op: string; at: number; status?: string; output?: string | undefined }[] = [];
  constructor(readonly clock: FakeClock) {}
  #fail(): void {
    if (this.down) throw errors.clientRequestFailed('cannot reach the registry', true);
  }
  async register(input: { id?: string }) {
    this.calls.push({ op: 'register', at: this.clock.monotonicMs() });
    this.#fail();
    this.known.add(input.id as string);
    return { index: this.calls.length, instance: {} };
  }
  async heartbeat(id: string, status: string, output?: string) {
    this.calls.push({ op: 'heartbeat', at: this.clock.monotonicMs(), status, output });
    this.#fail();
    if (!this.known.has(id)) throw errors.instanceNotFound(id);
    return { index: 1, status };
  }
  async deregister(id: string, _options?: { notify?: boolean }) {
    this.calls.push({ op: 'deregister', at: this.clock.monotonicMs() });
    this.#fail();
    if (!this.known.delete(id)) throw errors.instanceNotFound(id);
    return { index: 9, deleted: true };
  }
  ops(op: string) {
    return this.calls.filter((c) => c.op === op);
  }
}

/** The gaps between consecutive times are the expected ones, each within one 10 ms step. */
function assertGaps(times: readonly number[], expected: readonly number[]): void {
  const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
  assert.equal(gaps.length, expected.length, `gaps ${gaps.join(', ')}`);
  gaps.forEach((g, i) => {
    const want = expected[i] as number;
    assert.ok(g >= want && g <= want + 10, `gap ${i}: ${g} ms, expected ${want} ms`);
  });
}

async function run(clock: FakeClock, ms: number, stepMs = 10): Promise<void> {
  for (let t = 0; t < ms; t += stepMs) {
    clock.advance(stepMs);
    await flushMicrotasks();
  }
}

function setup(checks: object[] = [{ ttl: '3s' }], status?: () => HeartbeatReport) {
  const clock = new FakeClock();
  const registry = new FakeRegistry(clock);
  const reg = new SelfRegistration({
    registry: registry as unknown as RegistryClient,
    instance: { service: 'web', id: 'web-1', address: '10.0.0.1', port: 80, checks },
    clock,
    random: () => 1, // the top of the jitter range: delays are exactly the backoff ceiling
    ...(status === undefined ? {} : { status }),
  });
  return { clock, registry, reg };
}

describe('SelfRegistration', () => {
  it('retries registration with exponential backoff while the registry is down', async () => {
    const { clock, registry, reg } = setup();
    registry.down = true;
    reg.start();
    await run(clock, 3_050);
    const at = registry.ops('register').map((c) => c.at);
    // +200, +400, +800, +1600: ceilings doubling from retryBaseMs (within one 10 ms step)
    assertGaps(at, [200, 400, 800, 1600]);
    assert.equal(reg.registered, false);
    registry.down = false;
    await run(clock, 3_300);
    assert.equal(reg.registered, true);
    await reg.whenRegistered();
  });

  it('caps the backoff at retryMaxMs', async () => {
    const { clock, registry, reg } = setup();
    registry.down = true;
    reg.start();
    await run(clock, 60_000, 100);
    const at = registry.ops('register').map((c) => c.at);
    const gaps = at.slice(1).map((t, i) => t - (at[i] as number));
    assert.equal(Math.max(...gaps), 10_000);
  });

  it('heartbeats every third of the TTL, with the status callback’s status', async () => {
    const { clock, registry, reg } = setup([{ ttl: '3s' }], () => 'warning');
    reg.start();
    await run(clock, 3_500);
    const beats = registry.ops('heartbeat');
    assert.equal(beats.length, 4);
    assertGaps(
      beats.map((b) => b.at),
      [1000, 1000, 1000],
    );
    assert.ok(beats.every((b) => b.status === 'warning'));
    await reg.stop();
  });

  it('sends the report’s output, and heartbeats at once on heartbeatNow() (then every third again)', async () => {
    let report: HeartbeatReport = { status: 'passing', output: 'HTTP GET /healthz: 200' };
    const { clock, registry, reg } = setup([{ ttl: '3s' }], () => report);
    reg.heartbeatNow(); // before registration: nothing to do
    reg.start();
    await run(clock, 500);
    report = { status: 'critical', output: 'connection refused' };
    reg.heartbeatNow();
    await run(clock, 10);
    await run(clock, 1_000);
    const beats = registry.ops('heartbeat');
    assert.deepEqual(
      beats.map((b) => [b.status, b.output]),
      [
        ['passing', 'HTTP GET /healthz: 200'],
        ['critical', 'connection refused'],
        ['critical', 'connection refused'],
      ],
    );
    assertGaps(
      beats.map((b) => b.at),
      [490, 1000], // registered at 10, first beat at 20, then at once at 510
    );
    await reg.stop();
  });

  it('sends no heartbeats for an instance without a TTL check', async () => {
    const { clock, registry, reg } = setup([]);
    reg.start();
    await run(clock, 5_000, 100);
    assert.equal(registry.ops('heartbeat').length, 0);
    assert.equal(registry.ops('register').length, 1);
  });

  it('registers again when a heartbeat answers 404, and keeps heartbeating through outages', async () => {
    const { clock, registry, reg } = setup();
    const registered: number[] = [];
    reg.on('registered', () => registered.push(clock.monotonicMs()));
    reg.start();
    await run(clock, 1_500);
    registry.down = true; // heartbeats fail, but the instance is not forgotten
    await run(clock, 2_000);
    assert.equal(registry.ops('register').length, 1);
    registry.down = false;
    registry.known.clear(); // a restarted agent without its data
    await run(clock, 1_500);
    assert.equal(registry.ops('register').length, 2);
    assert.equal(registered.length, 2);
    assert.equal(reg.registered, true);
    await reg.stop();
  });

  it('deregisters once and stops, and treats an already-gone instance as done', async () => {
    const { clock, registry, reg } = setup();
    reg.start();
    await run(clock, 100);
    assert.equal((await reg.deregister())?.index, 9);
    await run(clock, 5_000, 100);
    assert.equal(registry.ops('heartbeat').length, 1, 'no heartbeat after deregister');
    assert.equal(await reg.deregister(), undefined);
  });

  it('rejects a bad registration at construction with the field named', () => {
    assert.throws(
      () =>
        new SelfRegistration({
          registry: {} as RegistryClient,
          instance: { service: 'Bad Name', address: '10.0.0.1', port: 80 },
        }),
      (err: unknown) => isMeshError(err) && /instance\.service/.test(err.message),
    );
  });

  it('generates a stable id when none is given', () => {
    const reg = new SelfRegistration({
      registry: {} as RegistryClient,
      instance: { service: 'web', address: '10.0.0.1', port: 80 },
    });
    assert.match(reg.id, /^web-[0-9a-f]{12}$/);
  });
});
