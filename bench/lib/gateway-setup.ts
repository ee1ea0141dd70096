/**
 * @module The gateway benchmarks' shared setup: the upstream (node:http answering 13 bytes) in
 * its own process, registered as service `hello` with a dev agent, and a gateway config that
 * routes everything to it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRegistryClient } from '../../src/client/registry-client.js';
import { startAgent, type AgentHandle } from './agent.js';
import { freePort, spawnChild, waitForLine, type Child } from './proc.js';

/** What every peer must answer (the upstream's body). */
export const UPSTREAM_BODY = 'hello, mesh!\n';

const UPSTREAM = `
const http = require('node:http');
const body = Buffer.from(${JSON.stringify(UPSTREAM_BODY)});
const headers = { 'content-type': 'text/plain' };
// Chunked: no content-length, so node frames the body in chunks (one writev with the head).
if (process.argv[2] !== 'chunked') headers['content-length'] = body.length;
const s = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, headers);
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

/**
 * Starts the upstream and a dev agent that knows it as `hello`. `chunked`: the upstream answers
 * with `transfer-encoding: chunked` instead of a Content-Length.
 */
export async function startUpstream(options: { chunked?: boolean } = {}): Promise<GatewaySetup> {
  const upPort = await freePort();
  const upstream = spawnChild('upstream', process.execPath, [
    '-e',
    UPSTREAM,
    String(upPort),
    ...(options.chunked === true ? ['chunked'] : []),
  ]);
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

/**
 * Writes `<dir>/<name>/nginx.conf`: nginx as a reverse proxy on 127.0.0.1:`port` to
 * 127.0.0.1:`upstreamPort`, one worker, no master, keep-alive to the upstream (128 idle
 * connections) and to clients; returns the nginx arguments (`-p <prefix> -c <conf>`).
 */
export function writeNginxConfig(
  dir: string,
  name: string,
  port: number,
  upstreamPort: number,
  tls: NginxTls = {},
): string[] {
  const prefix = join(dir, name);
  mkdirSync(prefix, { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
master_process off;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  # The defaults (1,000 requests, 75 s) would close client connections mid-run.
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path ${prefix}/nginx-body;
  proxy_temp_path ${prefix}/nginx-proxy;
  fastcgi_temp_path ${prefix}/nginx-fastcgi;
  uwsgi_temp_path ${prefix}/nginx-uwsgi;
  scgi_temp_path ${prefix}/nginx-scgi;
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 128; keepalive_requests 10000000; }
  server {
    listen 127.0.0.1:${port}${tls.server === undefined ? '' : ' ssl'};${serverTls(tls.server)}
    location / {
      proxy_pass ${tls.upstream === undefined ? 'http' : 'https'}://up;${upstreamTls(tls.upstream)}
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`,
  );
  return ['-p', prefix, '-c', conf];
}

/** mTLS for an nginx peer (bench:sidecar --mtls): files made by bench-certs.ts. */
export interface NginxTls {
  /** Serve TLS 1.3 and require a client certificate from `ca`. */
  readonly server?: { readonly cert: string; readonly key: string; readonly ca: string };
  /** Talk TLS 1.3 to the upstream with this client certificate, verifying it against `ca` by `name`. */
  readonly upstream?: {
    readonly cert: string;
    readonly key: string;
    readonly ca: string;
    readonly name: string;
  };
}

function serverTls(t: NginxTls['server']): string {
  if (t === undefined) return '';
  return `
    ssl_protocols TLSv1.3;
    ssl_certificate ${t.cert};
    ssl_certificate_key ${t.key};
    ssl_client_certificate ${t.ca};
    ssl_verify_client on;
    ssl_session_cache builtin:1000;`;
}

function upstreamTls(t: NginxTls['upstream']): string {
  if (t === undefined) return '';
  return `
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_certificate ${t.cert};
      proxy_ssl_certificate_key ${t.key};
      proxy_ssl_trusted_certificate ${t.ca};
      proxy_ssl_verify on;
      proxy_ssl_name ${t.name};
      proxy_ssl_session_reuse on;`;
}

/** The flags bench:gateway and bench:sidecar share (rounds and --cpu-prof are their own). */
export const PROXY_LOAD_FLAGS = Object.freeze({
  connections: { default: 64, help: 'wrk connections' },
  duration: { default: 10, help: 'seconds per wrk round' },
  warmup: { default: 3, help: 'seconds of untimed wrk load per peer before the rounds' },
  rate: { default: 1000, help: 'fixed rate (req/s) for the latency rounds' },
  'fixed-duration': { default: 10, help: 'seconds per fixed-rate round' },
  'quiet-wait': { default: 120, help: 'seconds to wait for other work on the machine to settle' },
});
