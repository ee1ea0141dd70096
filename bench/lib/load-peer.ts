/**
 * @module Load peers for A B comparisons against one server process: loadPeer drives a closed
 * loop (autocannon, wrk), fixedRatePeer GETs at a fixed rate; both measure the CPU used.
 */
import { monoMicros } from './cpuprofile.js';
import { sleep, type Peer } from './load.js';
import { openLoop, type OpenLoopResult } from './open-loop.js';
import { CpuWindow } from './proc.js';
import { RawHttpPool } from './raw-http.js';

/** One round of load: the driver's own result, and what it cost. */
export interface LoadRound<R> {
  readonly result: R;
  readonly rps: number;
  /** Cores the server process used over the round. */
  readonly serverCores: number;
  /** Cores this process (the orchestrator, and the driver when it runs in-process) used. */
  readonly driverCores: number;
}

/** What loadPeer drives, against which process, and how it reads the driver's result. */
export interface LoadPeerOptions<R> {
  readonly name: string;
  /** The server process whose CPU is measured. */
  readonly pid: number;
  /** Runs one round of load against the server. */
  readonly load: () => R | Promise<R>;
  /** The round's successful requests per second, from the driver's result. */
  readonly rps: (result: R) => number;
  /** What went wrong in a round (errors, non-2xx), if anything: the round then throws it. */
  readonly failure?: (result: R) => string | undefined;
  /** Collects each round's [from, to] monoMicros(), to slice the server's CPU profile with. */
  readonly windows?: [number, number][];
  /** A pause after each round, outside its measurement (sockets closing, the server idling). */
  readonly restMs?: number;
}

/**
 * A peer that runs `load()` once per round and measures the server's cores over it.
 * @example
 * const peers = [agentUrl, staticUrl].map((url, i) =>
 *   loadPeer({ name: `peer ${i}`, pid: pids[i], load: () => runWrk(url, 32, 5), rps: (r) => r.rps }),
 * );
 * const results = await alternate(peers, 3);
 */
export function loadPeer<R>(options: LoadPeerOptions<R>): Peer<LoadRound<R>> {
  const { name, pid, load, rps, failure, windows, restMs = 0 } = options;
  return {
    name,
    async run() {
      const from = monoMicros();
      const cpu = new CpuWindow(pid);
      const driver0 = process.cpuUsage();
      const result = await load();
      windows?.push([from, monoMicros()]);
      const { cores: serverCores, wallSeconds } = cpu.read();
      const driver = process.cpuUsage(driver0);
      const problem = failure?.(result);
      if (problem !== undefined) throw new Error(`${name}: ${problem}`);
      if (restMs > 0) await sleep(restMs);
      return {
        result,
        rps: rps(result),
        serverCores,
        driverCores: (driver.user + driver.system) / 1e6 / wallSeconds,
      };
    },
  };
}

/** One round of GETs at a fixed rate: the open loop's result, and what it cost. */
export interface FixedRateRound {
  readonly load: OpenLoopResult;
  /** Cores the server process used over the round. */
  readonly serverCores: number;
  /** Cores this process (the driver) used over the round. */
  readonly driverCores: number;
}

/** Where fixedRatePeer sends its GETs, how fast and for how long. */
export interface FixedRatePeerOptions {
  readonly name: string;
  /** The server process whose CPU is measured. */
  readonly pid: number;
  /** The server's base URL and the path every request GETs. */
  readonly url: string;
  readonly path: string;
  /** The Host header of every request (default the URL's authority). */
  readonly host?: string;
  /** Keep-alive connections of the round's RawHttpPool. */
  readonly connections: number;
  readonly rate: number;
  readonly seconds: number;
  /** Throw when a request of the round failed (default: report the errors in the result). */
  readonly failOnErrors?: boolean;
}

/**
 * A peer that sends GETs at a fixed rate over a fresh RawHttpPool each round (open loop: latency
 * from each request's due time), measuring the server's and this process's cores over it.
 * (autocannon's overallRate sends each second's quota in a burst, which measures queueing behind
 * the burst rather than latency at that rate.)
 */
export function fixedRatePeer(options: FixedRatePeerOptions): Peer<FixedRateRound> {
  const { name, pid, url, path, connections, rate, seconds } = options;
  return {
    name,
    async run() {
      const pool = new RawHttpPool(url, connections, options.host);
      const bytes = pool.build('GET', path);
      try {
        const cpu = new CpuWindow(pid);
        const driver = new CpuWindow(process.pid);
        const load = await openLoop({
          rate,
          seconds,
          op: async () => (await pool.request(bytes)) === 200,
        });
        const serverCores = cpu.read().cores;
        const driverCores = driver.read().cores;
        if (options.failOnErrors === true && load.errors > 0)
          throw new Error(`${name}: ${load.errors} errors: ${load.firstError}`);
        return { load, serverCores, driverCores };
      } finally {
        pool.close();
      }
    },
  };
}
