/** @module `meshwork gateway`: the HTTP load balancer that routes by service name, until SIGTERM. */
import { errors } from '../../core/errors.js';
import { splitList } from '../../config/config-sources.js';
import { resolveGatewayOptions } from '../../gateway/options.js';
import { startGateway, type RunningGateway } from '../../gateway/gateway.js';
import { createMeshFeed } from '../../gateway/mesh-feed.js';
import { TraceObserver } from '../../proxy/tracing/trace-observer.js';
import { createLogger } from '../../telemetry/logger.js';
import { startOtlpTracing } from '../../telemetry/tracing.js';
import {
  configInput,
  exitOnSignal,
  numberOrText,
  parseFlags,
  pickFlags,
  REGISTRY_TLS_FLAGS,
  REGISTRY_TLS_OPTION_KEYS,
  reloadOnSighup,
  type Command,
} from '../command.js';

const help = `Usage: meshwork gateway [flags]

Runs the gateway: server-side discovery. Clients call one address; the gateway routes each
request by Host (<service>.<domain>) or by the route rules of --config to a healthy instance,
from a discovery cache the registry keeps fresh (no registry call per request). Stateless: run
two or more behind DNS round-robin or HAProxy (docs/gateway.md).

Flags:
  --listen <host:port>    proxy address (default 127.0.0.1:8080; port 0 picks one)
  --admin <host:port>     admin address: /metrics, /health/ready, /health/live (default 127.0.0.1:9901)
  --registry <urls>       comma-separated agent URLs (default http://127.0.0.1:8500)
  --registry-ca <pem>     CA an https:// agent's certificate is checked against
  --registry-cert <pem>   client certificate for an agent that requires one (--registry-key <pem>)
  --token <secret>        ACL token sent to the agent (with ACLs on: service read for discovery;
                          in --mesh mode mesh read, and service:<service account> write for the
                          mTLS certificate). Prefer MESHWORK_GATEWAY__TOKEN: a flag shows in
                          the process list
  --config <file>         YAML/JSON config: routes, timeouts, retry, outlierDetection ...
  --domain <name>         host routing domain (default mesh.local; "" turns it off)
  --mesh                  mesh mode: routes and endpoints from the control plane's snapshots
                          (the VirtualServices whose gateways list --name), not from routes:
                          and discovery; host routing is off (docs/gateway.md, Mesh mode)
  --name <name>           mesh mode: the gateway's name (default meshwork-gateway)
  --namespace <ns>        mesh mode: the gateway's namespace (default default)
  --data-dir <dir>        mesh mode: where the last good snapshot is kept, and routed from
                          when no agent answers (default ./.meshwork/gateway)
  --mtls <auto|off>       mesh mode: auto gets a certificate from the agent's CA (when it has
                          one) before taking traffic and originates mTLS to sidecars with it;
                          off never asks (default auto; ignored without --mesh)
  --mtls-start-timeout-ms <ms>
                          mesh mode, --mtls auto: how long the start waits for the agent's CA;
                          no agent by then: no mTLS, logged (default 5000)
  --service-account <name>
                          mesh mode: the gateway's identity is
                          spiffe://<trust-domain>/ns/<namespace>/sa/<name>; with ACLs on the
                          token must allow service:<name> write (default: --name)
  --log-level <level>     error | warn | info | debug | silent (default info)
  --tracing-endpoint <url>  export a span per request over OTLP/HTTP, e.g.
                          http://127.0.0.1:4318/v1/traces (default: none; trace headers pass
                          untouched) (docs/observability.md, Tracing)
  --tracing-sample-ratio <0..1>  share of requests sampled when the caller sent no decision
                          (default 0.01; a caller's decision is followed)
  --access-log <path|stdout|off>  access logs: one JSON line per request
                          (docs/observability.md, "Access logs"; default off)
  --access-log-sample <0..1>  the share of successful requests logged (default 1: every
                          one); failed ones (5xx, none, a response flag) always are
  --istio-metrics <on|off>  Istio's standard request metrics (istio_requests_total ...) on
                          /metrics (default on; docs/observability.md)

Env: MESHWORK_GATEWAY__LISTEN, MESHWORK_GATEWAY__ADMIN, MESHWORK_GATEWAY__REGISTRY,
     MESHWORK_GATEWAY__DOMAIN, MESHWORK_GATEWAY__DRAIN_TIMEOUT_MS, MESHWORK_GATEWAY__LOG_LEVEL,
     MESHWORK_GATEWAY__MESH, MESHWORK_GATEWAY__NAME, MESHWORK_GATEWAY__NAMESPACE,
     MESHWORK_GATEWAY__DATA_DIR, MESHWORK_GATEWAY__MTLS, MESHWORK_GATEWAY__MTLS_START_TIMEOUT_MS,
     MESHWORK_GATEWAY__SERVICE_ACCOUNT, MESHWORK_GATEWAY__TOKEN, MESHWORK_GATEWAY__REGISTRY_CA_FILE,
     MESHWORK_GATEWAY__TRACING_ENDPOINT, MESHWORK_GATEWAY__TRACING_SAMPLE_RATIO,
     MESHWORK_GATEWAY__ACCESS_LOG, MESHWORK_GATEWAY__ACCESS_LOG_SAMPLE,
     MESHWORK_GATEWAY__ISTIO_METRICS ...
Precedence: defaults < config file < env < flags. A bad config exits 2 listing every problem.
Signals: SIGTERM/SIGINT stop accepting, finish in-flight requests (drainTimeoutMs), exit 0.
         SIGHUP re-reads the config file (and env): a valid one is swapped in whole (routes,
         retry, timeouts, outlier detection ...; listeners and pools on restart), an invalid
         one is logged with every problem and the running config stays.

Examples:
  meshwork gateway --registry http://127.0.0.1:8500
  meshwork gateway --listen 0.0.0.0:8080 --config gateway.yaml
  meshwork gateway --mesh --name edge --data-dir /var/lib/meshwork/edge
  MESHWORK_GATEWAY__TOKEN=... meshwork gateway --mesh --service-account edge-gateway
`;

/** The instrumentation scope's version on the gateway's spans. */
const GATEWAY_TRACING_VERSION = '0.1.0';

export const command: Command = {
  name: 'gateway',
  synopsis: 'Run the HTTP gateway (server-side discovery)',
  help,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      listen: { type: 'string' },
      admin: { type: 'string' },
      registry: { type: 'string' },
      ...REGISTRY_TLS_FLAGS,
      token: { type: 'string' },
      config: { type: 'string' },
      domain: { type: 'string' },
      mesh: { type: 'boolean' },
      name: { type: 'string' },
      namespace: { type: 'string' },
      'data-dir': { type: 'string' },
      'log-level': { type: 'string' },
      mtls: { type: 'string' },
      'mtls-start-timeout-ms': { type: 'string' },
      'service-account': { type: 'string' },
      'tracing-endpoint': { type: 'string' },
      'tracing-sample-ratio': { type: 'string' },
      'access-log': { type: 'string' },
      'access-log-sample': { type: 'string' },
      'istio-metrics': { type: 'string' },
    });
    if (positionals.length > 0) throw errors.cliUsage(`unexpected argument "${positionals[0]}"`);
    const flags = pickFlags(values, {
      listen: 'listen',
      admin: 'admin',
      domain: 'domain',
      mesh: 'mesh',
      name: 'name',
      namespace: 'namespace',
      'data-dir': 'dataDir',
      'log-level': 'logLevel',
      'tracing-endpoint': 'tracingEndpoint',
      'tracing-sample-ratio': 'tracingSampleRatio',
      registry: ['registry', splitList],
      token: 'token',
      mtls: 'mtls',
      'service-account': 'serviceAccount',
      // A number when it reads as one; else the schema names the problem.
      'mtls-start-timeout-ms': [
        'mtlsStartTimeoutMs',
        (v: string) => (/^\d+$/.test(v) ? Number(v) : v),
      ],
      ...REGISTRY_TLS_OPTION_KEYS,
      'access-log': 'accessLog',
      'access-log-sample': ['accessLogSample', numberOrText],
      'istio-metrics': 'istioMetrics',
    });
    const resolve = () => resolveGatewayOptions(configInput(values.config, io.env, flags));
    const options = resolve();
    const logger = createLogger({ level: options.logLevel });
    // Tracing: the SDK is loaded only when an endpoint is set; without one, no observer at all.
    const tracing =
      options.tracingEndpoint === undefined
        ? undefined
        : await startOtlpTracing({
            endpoint: options.tracingEndpoint,
            serviceName: options.name,
            serviceNamespace: options.namespace,
            version: GATEWAY_TRACING_VERSION,
            logger,
          });
    // The last spans go out before the process exits (after the gateway, whose requests make them).
    const stopTracing = async (): Promise<void> => {
      await tracing?.shutdown().catch((err: unknown) => logger.warn({ err }, 'span flush failed'));
    };
    let gateway: RunningGateway;
    try {
      gateway = await startGateway(options, logger, {
        ...(options.mesh ? { snapshotFeed: createMeshFeed(options, logger) } : {}),
        ...(tracing === undefined
          ? {}
          : {
              observers: [
                new TraceObserver({
                  spans: 'server-client',
                  sampleRatio: options.tracingSampleRatio,
                  sink: tracing,
                }),
              ],
            }),
      });
    } catch (err) {
      await stopTracing();
      throw err;
    }
    io.stdout.write(`meshwork gateway listening on ${gateway.url} (admin ${gateway.adminUrl})\n`);
    reloadOnSighup(
      logger,
      values.config,
      resolve,
      (next) => gateway.reload(next),
      (err) => gateway.reloadFailed(err),
    );

    return exitOnSignal(logger, async (signal) => {
      logger.info({ signal, drainTimeoutMs: options.drainTimeoutMs }, 'draining');
      const clean = await gateway.close();
      await stopTracing();
      logger.info({ clean }, 'stopped');
    });
  },
};
