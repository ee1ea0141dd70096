/** @module `meshwork sidecar`: the proxy beside one app instance, until SIGTERM or the app exits. */
import { errors } from '../../core/errors.js';
import { splitList } from '../../config/config-sources.js';
import { NATIVE_HTTP1_SUPPORT } from '../../proxy/http1/native-support.js';
import { resolveSidecarOptions } from '../../sidecar/options.js';
import { startSidecar } from '../../sidecar/sidecar.js';
import { keepWasmAtBaseline } from '../../sidecar/wasm-tier.js';
import { createLogger } from '../../telemetry/logger.js';
import {
  configInput,
  numberOrText,
  parseFlags,
  pickFlags,
  REGISTRY_TLS_FLAGS,
  REGISTRY_TLS_OPTION_KEYS,
  type Command,
} from '../command.js';

const help = `Usage: meshwork sidecar --service <name> --app-port <port> [flags] [-- CMD ARGS...]

Runs the sidecar proxy beside one instance of an app (docs/sidecar.md). It registers the app in
the catalog (its own inbound address and port; app port, sidecar version and protocol in meta),
checks the app's health itself and reports it, routes the app's outbound calls by the control
plane's snapshots, and with "-- CMD" starts the app once it can route and stops it on SIGTERM.

Flags:
  --service <name>        the service the app is an instance of (required)
  --app-port <port>       the port the app listens on, on 127.0.0.1 (required)
  --app-health <path>     HTTP GET path of the app's health check (default: a TCP connect)
  --inbound <host:port>   where other sidecars reach this one (default 0.0.0.0:15006)
  --outbound <host:port>  where the app calls other services (default 127.0.0.1:15001)
  --upstream <svc=host:port>  a fixed local port for one upstream service (repeatable)
  --admin <host:port>     /ready, /live, /metrics, /config_dump, POST /quitquitquit
                          (default 127.0.0.1:15000)
  --address <host>        the address registered (default: the inbound host, or 127.0.0.1
                          when inbound binds 0.0.0.0)
  --registry <urls>       comma-separated agent URLs (default http://127.0.0.1:8500)
  --registry-ca <pem>     CA an https:// agent's certificate is checked against
  --registry-cert <pem>   client certificate for an agent that requires one (--registry-key <pem>)
  --data-dir <dir>        where the last good snapshot is kept, and started from when no agent
                          answers (default ./.meshwork/sidecar-<service>)
  --meta <key=value>      instance metadata (repeatable), e.g. --meta version=v2
  --tag <tag>             instance tag (repeatable)
  --namespace <ns>        the service's namespace in the mesh (default default)
  --config <file>         YAML/JSON config: the keys above, health: {intervalMs, timeoutMs,
                          successesBeforePassing, failuresBeforeCritical, startPeriodMs, ttlMs},
                          timeouts ...
  --log-level <level>     error | warn | info | debug | silent (default info)
  --mtls <auto|off>       mesh mTLS: auto gets a certificate for the service from the agent's CA
                          before taking traffic when the agent has one (docs/security.md); off
                          never asks (default auto)
  --access-log <path|stdout|off>  access logs: one JSON line per request, both directions
                          (docs/observability.md, "Access logs"; default stdout)
  --access-log-sample <0..1>  the share of successful requests logged (default 0.1); failed
                          ones (5xx, none, a response flag) always are
  --istio-metrics <on|off>  Istio's standard request metrics (istio_requests_total ...) on
                          /metrics (default on; docs/observability.md)
  --token <secret>        ACL token sent to the agent (registration, certificate); with ACLs on
                          it must allow writing the service. Prefer MESHWORK_SIDECAR__TOKEN: a
                          flag shows in the process list
  --tracing-endpoint <url>  export a span per request and hop over OTLP/HTTP, e.g.
                          http://127.0.0.1:4318/v1/traces (default: none; trace headers pass
                          untouched) (docs/observability.md, Tracing)
  --tracing-sample-ratio <0..1>  share of requests sampled when the caller sent no decision
                          (default 0.01; a caller's decision is followed)

The app (after "--") gets MESHWORK_OUTBOUND=<outbound URL>; HTTP_PROXY is not set.
Env: MESHWORK_SIDECAR__SERVICE, MESHWORK_SIDECAR__APP_PORT, MESHWORK_SIDECAR__APP_HEALTH,
     MESHWORK_SIDECAR__INBOUND, MESHWORK_SIDECAR__OUTBOUND, MESHWORK_SIDECAR__UPSTREAMS,
     MESHWORK_SIDECAR__ADMIN, MESHWORK_SIDECAR__REGISTRY, MESHWORK_SIDECAR__DATA_DIR,
     MESHWORK_SIDECAR__META, MESHWORK_SIDECAR__TAGS, MESHWORK_SIDECAR__LOG_LEVEL,
     MESHWORK_SIDECAR__MTLS, MESHWORK_SIDECAR__MTLS_START_TIMEOUT_MS, MESHWORK_SIDECAR__TOKEN,
     MESHWORK_SIDECAR__TRACING_ENDPOINT, MESHWORK_SIDECAR__TRACING_SAMPLE_RATIO,
     MESHWORK_SIDECAR__ACCESS_LOG, MESHWORK_SIDECAR__ACCESS_LOG_SAMPLE,
     MESHWORK_SIDECAR__ISTIO_METRICS ...
Precedence: defaults < config file < env < flags. A bad config exits 2 listing every problem.
Signals: SIGTERM/SIGINT deregister (and wait until the service's watchers were told), drain
         inbound, stop the app (SIGTERM, SIGKILL after appStopTimeoutMs), then exit 0. When the
         app exits on its own, the sidecar deregisters and exits with the app's exit code.

Examples:
  meshwork sidecar --service orders --app-port 8081 --app-health /healthz -- node orders.js
  meshwork sidecar --service payments --app-port 8082 --meta version=v2 --upstream users=127.0.0.1:9191
`;

export const command: Command = {
  name: 'sidecar',
  synopsis: 'Run the sidecar proxy beside an app (registration, health, routing, lifecycle)',
  help,
  async run(argv, io) {
    // Everything after the first "--" is the app's command line, flags of its own included.
    const dashes = argv.indexOf('--');
    const own = dashes < 0 ? argv : argv.slice(0, dashes);
    const appCommand = dashes < 0 ? [] : argv.slice(dashes + 1);
    const { values, positionals } = parseFlags(own, {
      service: { type: 'string' },
      'app-port': { type: 'string' },
      'app-health': { type: 'string' },
      inbound: { type: 'string' },
      outbound: { type: 'string' },
      upstream: { type: 'string', multiple: true },
      admin: { type: 'string' },
      address: { type: 'string' },
      registry: { type: 'string' },
      ...REGISTRY_TLS_FLAGS,
      'data-dir': { type: 'string' },
      meta: { type: 'string', multiple: true },
      tag: { type: 'string', multiple: true },
      namespace: { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      mtls: { type: 'string' },
      token: { type: 'string' },
      'tracing-endpoint': { type: 'string' },
      'tracing-sample-ratio': { type: 'string' },
      'access-log': { type: 'string' },
      'access-log-sample': { type: 'string' },
      'istio-metrics': { type: 'string' },
    });
    if (positionals.length > 0)
      throw errors.cliUsage(
        `unexpected argument "${positionals[0]}" (the app's command goes after "--")`,
      );
    if (dashes >= 0 && appCommand.length === 0)
      throw errors.cliUsage('nothing after "--": give the app\'s command, or leave out "--"');
    const flags = {
      ...pickFlags(values, {
        service: 'service',
        'app-health': 'appHealth',
        inbound: 'inbound',
        outbound: 'outbound',
        upstream: 'upstreams',
        admin: 'admin',
        address: 'address',
        'data-dir': 'dataDir',
        meta: 'meta',
        tag: 'tags',
        namespace: 'namespace',
        'log-level': 'logLevel',
        mtls: 'mtls',
        token: 'token',
        'tracing-endpoint': 'tracingEndpoint',
        'tracing-sample-ratio': 'tracingSampleRatio',
        registry: ['registry', splitList],
        ...REGISTRY_TLS_OPTION_KEYS,
        // A number when it reads as one; else the schema names the problem.
        'app-port': ['appPort', (v: string) => (/^\d+$/.test(v) ? Number(v) : v)],
        'access-log': 'accessLog',
        'access-log-sample': ['accessLogSample', numberOrText],
        'istio-metrics': 'istioMetrics',
      }),
      ...(appCommand.length === 0 ? {} : { command: appCommand }),
    };
    const options = resolveSidecarOptions(configInput(values.config, io.env, flags));
    const logger = createLogger({ level: options.logLevel });
    // Before the first undici connection (the registry's): see sidecar/wasm-tier.ts.
    keepWasmAtBaseline(NATIVE_HTTP1_SUPPORT);
    const sidecar = await startSidecar(options, logger);
    io.stdout.write(
      `meshwork sidecar for ${options.service}: inbound ${sidecar.inboundUrl}, outbound ${sidecar.outboundUrl} (admin ${sidecar.adminUrl})\n`,
    );
    const onSignal = (signal: string): void => void sidecar.stop(signal);
    process.once('SIGTERM', () => onSignal('SIGTERM'));
    process.once('SIGINT', () => onSignal('SIGINT'));
    return sidecar.ended;
  },
};
