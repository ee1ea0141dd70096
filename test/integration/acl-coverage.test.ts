/**
 * Every route of the agent's API has an ACL decision (issue 20): in the URL rules table, or
 * classified as checked by its handler or open (acl-route-rules.ts). A new route in neither is
 * logged at start, and fails here, naming it: decide what it needs, then add it to one of them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveAgentOptions } from '../../src/agent/options.js';
import { startAgent } from '../../src/cli/agent-runtime.js';
import type { LogFields, Logger } from '../../src/core/logger.js';

describe('ACL coverage of the API routes', () => {
  it('leaves no /api/v1 or /v1 route without an ACL decision', async () => {
    const warnings: { fields: LogFields; msg: string }[] = [];
    const logger: Logger = {
      error: () => undefined,
      info: () => undefined,
      debug: () => undefined,
      warn: (fields, msg) => warnings.push({ fields, msg }),
      child: () => logger,
    };
    const agent = await startAgent(
      resolveAgentOptions({
        flags: { http: '127.0.0.1:0', dns: 'off', dev: true, nodeName: 'n', logLevel: 'silent' },
      }),
      logger,
    );
    await agent.close();
    const unclassified = warnings.filter((w) => w.msg === 'API routes without an ACL rule');
    assert.deepEqual(
      unclassified.map((w) => w.fields.routes),
      [],
    );
  });
});
