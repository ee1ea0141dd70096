/** @module Unit tests of watchMemoryFallbacks: a refused memory saving is a warning and a metric. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { Logger } from '../../../src/core/logger.js';
import {
  watchMemoryFallbacks,
  YOUNG_GENERATION_CHECK_MS,
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
  it('reports nothing while both savings hold, and checks the young generation on its interval', async () => {
    const metrics = new Registry();
    const clock = new FakeClock();
    const { log, warns } = recorder();
    let checks = 0;
    const watch = watchMemoryFallbacks(metrics, log, clock, {
      undici: undefined,
      youngGeneration: () => void checks++,
    });
    clock.advance(YOUNG_GENERATION_CHECK_MS * 3);
    assert.equal(checks, 4, 'at start, then every interval');
    assert.equal(await gauge(metrics, 'undici'), 0);
    assert.equal(await gauge(metrics, 'young-generation'), 0);
    assert.deepEqual(warns, []);
    watch.stop();
    clock.advance(YOUNG_GENERATION_CHECK_MS * 3);
    assert.equal(checks, 4, 'no check after stop');
  });

  it('warns and sets the gauge at start when undici’s index serves', async () => {
    const metrics = new Registry();
    const { log, warns } = recorder();
    const watch = watchMemoryFallbacks(metrics, log, new FakeClock(), {
      undici: 'agent.js does not export a dispatcher class',
      youngGeneration: () => undefined,
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
    });
    clock.advance(YOUNG_GENERATION_CHECK_MS);
    assert.equal(await gauge(metrics, 'young-generation'), 0);
    state.grown = 'the young generation grew to 16.0 MB';
    clock.advance(YOUNG_GENERATION_CHECK_MS);
    assert.equal(await gauge(metrics, 'young-generation'), 1);
    clock.advance(YOUNG_GENERATION_CHECK_MS * 5);
    assert.equal(checks, 3, 'no checks once it broke');
    assert.deepEqual(warns, [
      [{ part: 'young-generation', reason: state.grown }, 'memory saving off'],
    ]);
  });
});
