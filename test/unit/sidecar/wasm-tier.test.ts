/** @module Unit tests of keepWasmAtBaseline and its self-test, wasmTierDrift. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  keepWasmAtBaseline,
  WASM_BASELINE_FLAG,
  wasmTierDrift,
} from '../../../src/sidecar/wasm-tier.js';

const MIB = 1024 * 1024;

describe('keepWasmAtBaseline', () => {
  it("sets V8's Liftoff-only flag when the sidecar's upstream client is its own", () => {
    const set: string[] = [];
    assert.equal(
      keepWasmAtBaseline({ server: undefined, agent: undefined }, (f) => set.push(f)),
      true,
    );
    assert.deepEqual(set, ['--liftoff-only']);
    assert.equal(WASM_BASELINE_FLAG, '--liftoff-only');
  });

  it('leaves the optimizing tier on where undici carries the data path (parser self-test failed)', () => {
    const set: string[] = [];
    assert.equal(
      keepWasmAtBaseline({ server: undefined, agent: 'no parser' }, (f) => set.push(f)),
      false,
    );
    assert.deepEqual(set, []);
  });
});

describe('wasmTierDrift', () => {
  it('holds while the compiler memory stays at what the baseline tier takes', () => {
    assert.equal(wasmTierDrift(true, 8 * MIB), undefined);
    assert.equal(wasmTierDrift(true, 24 * MIB), undefined);
  });

  it('says why when the optimizing tier ran anyway', () => {
    assert.equal(
      wasmTierDrift(true, 42 * MIB),
      "V8's compiler memory peaked at 42.0 MiB despite --liftoff-only (this V8 ignores the flag)",
    );
  });

  it('is silent where the flag was not set (the fallback data path, or another process)', () => {
    assert.equal(wasmTierDrift(false, 42 * MIB), undefined);
  });
});
