/**
 * @module Keeps WebAssembly at V8's baseline compiler (Liftoff) in `meshwork sidecar`, without
 * the optimizing tier (TurboFan).
 *
 * The only WebAssembly a sidecar runs is undici's HTTP parser (llhttp), and while the sidecar
 * serves on its own HTTP/1.1 engine, undici carries only its control traffic: registration,
 * heartbeats, the certificate, the snapshot stream. Left to its default, V8 compiles llhttp a
 * second time with TurboFan on the first undici connection, which takes ~35 MiB of compiler
 * memory at once: a sidecar's RSS peaked at ~107 MiB at start for ~80 under load, and glibc
 * sometimes kept ~10 MiB of it afterwards (docs/benchmarks.md, "Sidecar memory"). Liftoff's
 * code parses a few control messages a second as well.
 *
 * Where undici carries the data path (this runtime's parser failed the self-test, so the
 * upstream client falls back to undici), the optimizing tier stays on. `v8.setFlagsFromString`
 * is node's API for V8 flags; V8 reads this one when it compiles a module, so it is set before
 * the first undici connection. V8's flags are not a stable interface, hence the self-test.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import type { NativeHttp1Support } from '../proxy/http1/native-support.js';

/** V8's flag: compile WebAssembly with Liftoff only (no TurboFan tier-up). */
export const WASM_BASELINE_FLAG = '--liftoff-only';

/** Whether keepWasmAtBaseline set the flag in this process. */
let baselineSet = false;

/**
 * Sets {@link WASM_BASELINE_FLAG} when the sidecar's upstream client is its own (this runtime's
 * parser passed the response self-test, per `support`), so undici serves only control traffic;
 * returns whether it did. `setFlags` is `v8.setFlagsFromString` (a stand-in in tests).
 */
export function keepWasmAtBaseline(
  support: NativeHttp1Support,
  setFlags: (flags: string) => void = setFlagsFromString,
): boolean {
  if (support.agent !== undefined) return false;
  setFlags(WASM_BASELINE_FLAG);
  baselineSet = true;
  return true;
}

/**
 * V8's compiler memory at its peak, past which the optimizing tier ran: ~42 MiB with it, 7-8
 * MiB without (a sidecar from start to traffic; the modules' parsing is the rest).
 */
const BASELINE_PEAK_BYTES = 24 * 1024 * 1024;

/**
 * The self-test of {@link keepWasmAtBaseline}: `undefined` where the flag was not set here or
 * holds; else why it does not (V8's compiler memory, which V8 reports as `peak_malloced_memory`,
 * went past what the baseline tier takes: a later V8 may drop or rename the flag). The caller
 * warns and counts it; the sidecar works as it would without the saving, with a higher peak.
 */
export function wasmTierDrift(
  set: boolean = baselineSet,
  peakBytes: number = getHeapStatistics().peak_malloced_memory,
): string | undefined {
  if (!set || peakBytes <= BASELINE_PEAK_BYTES) return undefined;
  return `V8's compiler memory peaked at ${(peakBytes / 1048576).toFixed(1)} MiB despite ${WASM_BASELINE_FLAG} (this V8 ignores the flag)`;
}
