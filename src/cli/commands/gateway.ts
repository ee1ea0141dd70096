/** @module `meshwork gateway`: the HTTP load balancer that routes by service name, until SIGTERM. */
import { errors } from '../../core/errors.js';
import { splitList } from '../../config/config-sources.js';
import { resolveGatewayOptions } from '../../gateway/options.js';
import { startGateway } from '../../gateway/gateway.js';
import { createMeshFeed } from '../../gateway/mesh-feed.js';
import { createLogger } from '../../telemetry/logger.js';
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
  --token <secret>        ACL token sent to the agent (with ACLs on: service read for discovery,
                          mesh read in --mesh mode)
  --config <file>         YAML/JSON config: routes, timeouts, retry, outlierDetection ...
  --domain <name>         host routing domain (default mesh.local; "" turns it off)
  --mesh                  mesh mode: routes and endpoints from the control plane's snapshots
                          (the VirtualServices whose gateways list --name), not from routes:
                          and discovery; host routing is off (docs/gateway.md, Mesh mode)
  --name <name>           mesh mode: the gateway's name (default meshwork-gateway)
  --namespace <ns>        mesh mode: the gateway's namespace (default default)
  --data-dir <dir>        mesh mode: where the last good snapshot is kept, and routed from
                          when no agent answers (default ./.meshwork/gateway)
  --log-level <level>     error | warn | info | debug | silent (default info)
  --access-log <path|stdout|off>  access logs: one JSON line per request
                          (docs/observability.md, "Access logs"; default off)
  --access-log-sample <0..1>  the share of successful requests logged (default 1: every
                          one); failed ones (5xx, none, a response flag) always are

Env: MESHWORK_GATEWAY__LISTEN, MESHWORK_GATEWAY__ADMIN, MESHWORK_GATEWAY__REGISTRY,
     MESHWORK_GATEWAY__DOMAIN, MESHWORK_GATEWAY__DRAIN_TIMEOUT_MS, MESHWORK_GATEWAY__LOG_LEVEL,
     MESHWORK_GATEWAY__MESH, MESHWORK_GATEWAY__NAME, MESHWORK_GATEWAY__NAMESPACE,
     MESHWORK_GATEWAY__DATA_DIR, MESHWORK_GATEWAY__REGISTRY_CA_FILE,
     MESHWORK_GATEWAY__ACCESS_LOG, MESHWORK_GATEWAY__ACCESS_LOG_SAMPLE ...
Precedence: defaults < config file < env < flags. A bad config exits 2 listing every problem.
Signals: SIGTERM/SIGINT stop accepting, finish in-flight requests (drainTimeoutMs), exit 0.
         SIGHUP re-reads the config file (and env): a valid one is swapped in whole (routes,
         retry, timeouts, outlier detection ...; listeners and pools on restart), an invalid
         one is logged with every problem and the running config stays.

Examples:
  meshwork gateway --registry http://127.0.0.1:8500
  meshwork gateway --listen 0.0.0.0:8080 --config gateway.yaml
  meshwork gateway --mesh --name edge --data-dir /var/lib/meshwork/edge
`;

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
      'access-log': { type: 'string' },
      'access-log-sample': { type: 'string' },
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
      registry: ['registry', splitList],
      token: 'token',
      ...REGISTRY_TLS_OPTION_KEYS,
      'access-log': 'accessLog',
      'access-log-sample': ['accessLogSample', numberOrText],
    });
    const resolve = () => resolveGatewayOptions(configInput(values.config, io.env, flags));
    const options = resolve();
    const logger = createLogger({ level: options.logLevel });
    const gateway = await startGateway(
      options,
      logger,
      options.mesh ? { snapshotFeed: createMeshFeed(options, logger) } : {},
    );
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
      logger.info({ clean }, 'stopped');
    });
  },
};
