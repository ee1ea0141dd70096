/** @module Unit tests of watchMemoryFallbacks: a refused memory saving is a warning and a metric. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { Logger } from '../../../src/core/logger.js';
import {
  watchMemoryFallbacks,
  MEMORY_FALLBACK_CHECK_MS,
} from '../../../src/sidecar/memory-fallbacks.js';
import { FakeClock } from '../../../src/testing/fake-clock.js';

function recorder(): { log: Logger; warns: [Record<string, unknown>, string][] } {
  const warns: [Record<string, unknown>, string][] = [];
  const log: Logger = {
    error: () => undefined,
    warn: (fields, msg) => void warns.push([fields, msg]),
    info: () => undefined,
    debug: () => undefined,
    child: () => log,
  };
  return { log, warns };
}

async function gauge(metrics: Registry, part: string): Promise<number | undefined> {
  const json = await metrics.getSingleMetric('meshwork_sidecar_memory_fallback')?.get();
  return json?.values.find((v) => v.labels.part === part)?.value;
}

describe('watchMemoryFallbacks', () => {
  it('reports nothing while the savings hold, and checks the young generation and the wasm tier on its interval', async () => {
    const metrics = new Registry();
    const clock = new FakeClock();
    const { log, warns } = recorder();
    let checks = 0;
    let tierChecks = 0;
    const watch = watchMemoryFallbacks(metrics, log, clock, {
      undici: undefined,
      youngGeneration: () => void checks++,
      wasmTier: () => void tierChecks++,
    });
    clock.advance(MEMORY_FALLBACK_CHECK_MS * 3);
    assert.equal(checks, 4, 'at start, then every interval');
    assert.equal(tierChecks, 4);
    assert.equal(await gauge(metrics, 'undici'), 0);
    assert.equal(await gauge(metrics, 'young-generation'), 0);
    assert.equal(await gauge(metrics, 'wasm-tier'), 0);
    assert.deepEqual(warns, []);
    watch.stop();
    clock.advance(MEMORY_FALLBACK_CHECK_MS * 3);
    assert.equal(checks, 4, 'no check after stop');
    assert.equal(tierChecks, 4);
  });

  it('warns and sets the gauge at start when undici’s index serves', async () => {
    const metrics = new Registry();
    const { log, warns } = recorder();
    const watch = watchMemoryFallbacks(metrics, log, new FakeClock(), {
      undici: 'agent.js does not export a dispatcher class',
      youngGeneration: () => undefined,
      wasmTier: () => undefined,
    });
    assert.equal(await gauge(metrics, 'undici'), 1);
    assert.deepEqual(warns, [
      [
        { part: 'undici', reason: 'agent.js does not export a dispatcher class' },
        'memory saving off: undici index loaded',
      ],
    ]);
    watch.stop();
  });

  it('warns once and sets the gauge when the young generation outgrows its bound', async () => {
    const metrics = new Registry();
    const clock = new FakeClock();
    const { log, warns } = recorder();
    const state: { grown?: string } = {};
    let checks = 0;
    watchMemoryFallbacks(metrics, log, clock, {
      undici: undefined,
      youngGeneration: () => {
        checks++;
        return state.grown;
      },
      wasmTier: () => undefined,
    });
    clock.advance(MEMORY_FALLBACK_CHECK_MS);
    assert.equal(await gauge(metrics, 'young-generation'), 0);
    state.grown = 'the young generation grew to 16.0 MB';
    clock.advance(MEMORY_FALLBACK_CHECK_MS);
    assert.equal(await gauge(metrics, 'young-generation'), 1);
    clock.advance(MEMORY_FALLBACK_CHECK_MS * 5);
    assert.equal(checks, 3, 'no checks once it broke');
    assert.deepEqual(warns, [
      [{ part: 'young-generation', reason: state.grown }, 'memory saving off'],
    ]);
  });

  it('warns once when WebAssembly left its baseline tier, and goes on checking the young generation', async () => {
    const metrics = new Registry();
    const clock = new FakeClock();
    const { log, warns } = recorder();
    const reason = "V8's compiler memory peaked at 42.0 MiB despite --liftoff-only";
    let tierChecks = 0;
    let checks = 0;
    const watch = watchMemoryFallbacks(metrics, log, clock, {
      undici: undefined,
      youngGeneration: () => void checks++,
      wasmTier: () => {
        tierChecks++;
        return tierChecks >= 2 ? reason : undefined;
      },
    });
    assert.equal(await gauge(metrics, 'wasm-tier'), 0);
    clock.advance(MEMORY_FALLBACK_CHECK_MS);
    assert.equal(await gauge(metrics, 'wasm-tier'), 1);
    assert.equal(await gauge(metrics, 'young-generation'), 0);
    clock.advance(MEMORY_FALLBACK_CHECK_MS * 4);
    assert.equal(tierChecks, 2, 'no checks of the tier once it broke');
    assert.equal(checks, 6, 'the young generation still checked every interval');
    assert.deepEqual(warns, [[{ part: 'wasm-tier', reason }, 'memory saving off']]);
    watch.stop();
  });
});
