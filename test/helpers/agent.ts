/** @module Test helpers: an in-process agent on port 0 and a tiny JSON HTTP client. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { request } from 'undici';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import { resolveAgentOptions } from '../../src/agent/options.js';
import { startAgent, type AgentDeps, type RunningAgent } from '../../src/cli/agent-runtime.js';
import type { AclResolver } from '../../src/registry/acl/acl-contract.js';

export interface TestAgent extends RunningAgent {
  readonly dataDir: string;
  stop(): Promise<void>;
}

/**
 * Flags lowering the check floors to 10 ms, for tests that run checks in real time at sub-second
 * intervals or TTLs (the default floors are 1 s; docs/health.md).
 */
export const FAST_CHECKS = Object.freeze({
  checks: { minIntervalMs: 10, minTimeoutMs: 10, minTtlMs: 10 },
});

/**
 * ACLs for a test agent (`deps.acl`): token `<name>-token` may write service `<name>` only;
 * everything else (reads, mesh) is allowed. For the CA's leaf signing, which takes service write.
 */
export const PER_SERVICE_TOKENS: AclResolver = {
  enabled: true,
  resolve: (secret) =>
    Promise.resolve({
      accessorId: secret ?? 'anonymous',
      check: (kind, name, access) =>
        secret === `${name}-token` || kind !== 'service'
          ? { allowed: true }
          : { allowed: false, missing: `service:${name} ${access}` },
    }),
};

/** Starts an agent on 127.0.0.1:0 (or `http`), DNS too (memory store unless `sqlite`); `flags` override options. */
export async function startTestAgent(
  opts: {
    sqlite?: boolean;
    dataDir?: string;
    http?: string;
    dns?: Record<string, unknown>;
    flags?: Record<string, unknown>;
    deps?: AgentDeps;
    /** Where the agent logs (default: nowhere). */
    logger?: Logger;
  } = {},
): Promise<TestAgent> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'meshwork-test-'));
  const options = resolveAgentOptions({
    flags: {
      http: opts.http ?? '127.0.0.1:0',
      dns: { listen: '127.0.0.1:0', ...opts.dns },
      dev: opts.sqlite !== true,
      dataDir,
      nodeName: 'test-node',
      logLevel: 'silent',
      ...opts.flags,
    },
  });
  const agent = await startAgent(options, opts.logger ?? silentLogger, opts.deps);
  return {
    ...agent,
    dataDir,
    stop: async () => {
      await agent.close();
      if (opts.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts one test agent before the tests of the calling suite and stops it after them; the
 * answer gives that agent (call it inside tests and hooks only).
 */
export function useTestAgent(opts: Parameters<typeof startTestAgent>[0] = {}): () => TestAgent {
  let agent: TestAgent | undefined;
  before(async () => {
    agent = await startTestAgent(opts);
  });
  after(async () => {
    await agent?.stop();
  });
  return () => {
    if (agent === undefined) throw new Error('the test agent has not started');
    return agent;
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
export interface JsonResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
  text: string;
}

/** Sends a request; `body` objects are sent as JSON, strings and buffers as they are. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
export async function http<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const payload =
    body === undefined
      ? undefined
      : typeof body === 'string' || Buffer.isBuffer(body)
        ? body
        : JSON.stringify(body);
  const res = await request(base + path, {
    method: method as 'GET',
    headers: {
      ...(typeof body === 'object' && !Buffer.isBuffer(body)
        ? { 'content-type': 'application/json' }
        : {}),
      ...headers,
    },
    ...(payload === undefined ? {} : { body: payload }),
  });
  const text = await res.body.text();
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body: parsed as T, text };
}

/**
 * Starts an in-process agent in cluster mode (`--store etcd`) on port 0, DNS on port 0 too.
 * Agents of one test share `prefix`, and so one catalog.
 */
export function startClusterAgent(
  endpoints: readonly string[],
  nodeName: string,
  prefix?: string,
  flags: Record<string, unknown> = {},
  deps: AgentDeps = {},
): Promise<RunningAgent> {
  return startAgent(
    resolveAgentOptions({
      flags: {
        http: '127.0.0.1:0',
        dns: '127.0.0.1:0',
        store: 'etcd',
        etcdEndpoints: [...endpoints],
        ...(prefix === undefined ? {} : { etcdPrefix: prefix }),
        nodeName,
        logLevel: 'silent',
        ...flags,
      },
    }),
    silentLogger,
    deps,
  );
}
