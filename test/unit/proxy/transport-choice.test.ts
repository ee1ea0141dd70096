import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { Logger } from '../../../src/core/logger.js';
import { chooseTransports } from '../../../src/proxy/transport-choice.js';

/** A logger that keeps its warnings. */
function recorder(): Logger & { warns: [Record<string, unknown>, string][] } {
  const warns: [Record<string, unknown>, string][] = [];
  const log: Logger & { warns: typeof warns } = {
    warns,
    error: () => undefined,
    warn: (fields, msg) => void warns.push([fields as Record<string, unknown>, msg]),
    info: () => undefined,
    debug: () => undefined,
    child: () => log,
  };
  return log;
}

const NATIVE = { upstreamClient: 'native', downstreamServer: 'native' } as const;
const REFUSED = { server: 'no request parser', agent: 'no response parser' };

describe('chooseTransports', () => {
  it('keeps the native server and client where the self-test passed, with no warning', async () => {
    const registry = new Registry();
    const log = recorder();
    const chosen = chooseTransports(
      NATIVE,
      { server: undefined, agent: undefined },
      'gateway',
      registry,
      log,
    );
    assert.deepEqual(chosen, NATIVE);
    assert.deepEqual(log.warns, []);
    const text = await registry.metrics();
    assert.match(text, /meshwork_gateway_http1_fallback\{side="upstream"\} 0/);
    assert.match(text, /meshwork_gateway_http1_fallback\{side="downstream"\} 0/);
  });

  it('falls back where the self-test failed: one warning per side, with the reason, and the gauge at 1', async () => {
    const registry = new Registry();
    const log = recorder();
    const chosen = chooseTransports(NATIVE, REFUSED, 'sidecar', registry, log);
    assert.deepEqual(chosen, { upstreamClient: 'undici', downstreamServer: 'node' });
    assert.deepEqual(log.warns, [
      [{ side: 'upstream', using: 'undici', reason: 'no response parser' }, 'http1 fallback'],
      [{ side: 'downstream', using: 'node:http', reason: 'no request parser' }, 'http1 fallback'],
    ]);
    const text = await registry.metrics();
    assert.match(text, /meshwork_sidecar_http1_fallback\{side="upstream"\} 1/);
    assert.match(text, /meshwork_sidecar_http1_fallback\{side="downstream"\} 1/);
  });

  it('takes undici and node:http when configured as a choice, not a fallback', async () => {
    const registry = new Registry();
    const log = recorder();
    const asked = { upstreamClient: 'undici', downstreamServer: 'node' } as const;
    assert.deepEqual(chooseTransports(asked, REFUSED, 'gateway', registry, log), asked);
    assert.deepEqual(log.warns, []);
    assert.match(await registry.metrics(), /meshwork_gateway_http1_fallback\{side="upstream"\} 0/);
  });
});
