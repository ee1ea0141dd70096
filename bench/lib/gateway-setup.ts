/**
 * @module The gateway benchmarks' shared setup: the upstream (node:http answering 13 bytes) in
 * its own process, registered as service `hello` with a dev agent, and a gateway config that
 * routes everything to it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRegistryClient } from '../../src/client/registry-client.js';
import { startAgent, type AgentHandle } from './agent.js';
import { freePort, spawnChild, waitForLine, type Child } from './proc.js';

/** What every peer must answer (the upstream's body). */
export const UPSTREAM_BODY = 'hello, mesh!\n';

const UPSTREAM = `
const http = require('node:http');
const body = Buffer.from(${JSON.stringify(UPSTREAM_BODY)});
const s = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
s.keepAliveTimeout = 60000;
s.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('listening'));`;

export interface GatewaySetup {
  readonly upstream: Child;
  readonly upstreamUrl: string;
  readonly upPort: number;
  readonly agent: AgentHandle;
}

/** Starts the upstream and a dev agent that knows it as `hello`. */
export async function startUpstream(): Promise<GatewaySetup> {
  const upPort = await freePort();
  const upstream = spawnChild('upstream', process.execPath, ['-e', UPSTREAM, String(upPort)]);
  await waitForLine(upstream, /listening/);
  const agent = await startAgent({ dev: true });
  await createRegistryClient({ addresses: [agent.url] }).register({
    service: 'hello',
    id: 'hello-1',
    address: '127.0.0.1',
    port: upPort,
  });
  return { upstream, upstreamUrl: `http://127.0.0.1:${upPort}`, upPort, agent };
}

/** Writes `<dir>/<name>.yaml`: a gateway on a free port routing everything to `hello`. */
export async function writeGatewayConfig(
  dir: string,
  name: string,
  registry: string,
): Promise<{ file: string; port: number }> {
  const port = await freePort();
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `listen: 127.0.0.1:${port}`,
      'admin: 127.0.0.1:0',
      `registry: [${registry}]`,
      'logLevel: warn',
      // As long as nginx keeps them: the fixed-rate driver keeps idle connections open.
      'downstreamKeepAliveMs: 300000',
      'routes:',
      '  - name: all',
      '    match: { path: { prefix: / } }',
      '    service: hello',
    ].join('\n'),
  );
  return { file, port };
}
