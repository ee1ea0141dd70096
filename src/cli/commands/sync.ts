/** @module `meshwork sync docker`: registers the labelled containers of a Docker host, until SIGTERM. */
import { errors } from '../../core/errors.js';
import { splitList } from '../../config/config-sources.js';
import { resolveSyncOptions } from '../../sync/options.js';
import { startSync } from '../../sync/sync.js';
import { createLogger } from '../../telemetry/logger.js';
import { createMetricsRegistry } from '../../telemetry/metrics.js';
import {
  configInput,
  exitOnSignal,
  parseFlags,
  pickFlags,
  REGISTRY_TLS_FLAGS,
  REGISTRY_TLS_OPTION_KEYS,
  type Command,
} from '../command.js';

const help = `Usage: meshwork sync docker [flags]

Registers the containers of one Docker host in the catalog from their labels, and deregisters
them when they stop (docs/orchestrators.md). It lists the running containers, then follows the
Docker events stream: a container with a meshwork.service label (or Registrator's SERVICE_NAME)
becomes an instance (source orchestrator) of the apply set docker:<node-name>; a container that
stops, dies or is removed is deregistered at once; a paused one goes to maintenance. On start and
after every reconnection to Docker it reconciles the whole set. A container with bad labels is
skipped and reported (log line and meshwork_sync_invalid_workloads_total).

Flags:
  --docker <url>          the Docker daemon (default unix:///var/run/docker.sock; tcp://host:2375)
  --registry <urls>       comma-separated agent URLs (default http://127.0.0.1:8500)
  --registry-ca <pem>     CA an https:// agent's certificate is checked against
  --registry-cert <pem>   client certificate for an agent that requires one (--registry-key <pem>)
  --token <secret>        ACL token sent to the agent (prefer MESHWORK_SYNC__TOKEN)
  --label-prefix <p>      the labels' prefix (default "meshwork.")
  --node-name <name>      this host's name; the sync owns the apply set docker:<name> only
                          (default: the host name)
  --address <host>        the address registered for host-network containers and for ports
                          published on every interface (default 127.0.0.1)
  --admin <host:port|off> /live, /ready (after the first full reconcile), /metrics (default off)
  --config <file>         YAML/JSON config with the keys docker, registry, labelPrefix, nodeName,
                          address, admin, retryMs, logLevel, token, registryCaFile ...
  --log-level <level>     error | warn | info | debug | silent (default info)

Env: MESHWORK_SYNC__DOCKER, MESHWORK_SYNC__REGISTRY, MESHWORK_SYNC__REGISTRY_CA_FILE,
     MESHWORK_SYNC__REGISTRY_CERT_FILE, MESHWORK_SYNC__REGISTRY_KEY_FILE, MESHWORK_SYNC__TOKEN,
     MESHWORK_SYNC__LABEL_PREFIX, MESHWORK_SYNC__NODE_NAME, MESHWORK_SYNC__ADDRESS,
     MESHWORK_SYNC__ADMIN, MESHWORK_SYNC__RETRY_MS, MESHWORK_SYNC__LOG_LEVEL
Precedence: defaults < config file < env < flags. A bad config exits 2 listing every problem.
Signals: SIGTERM/SIGINT stop following Docker and exit 0; the instances stay (a restarted sync
         reconciles them; a container stopped meanwhile is removed then).

Examples:
  meshwork sync docker --registry http://10.0.0.2:8500 --node-name host-a --address 10.0.0.5
  docker run -d --network host -l meshwork.service=web -l meshwork.port=8080 \\
    -l meshwork.check.http=/healthz -l meshwork.check.interval=5s my/web
`;

export const command: Command = {
  name: 'sync',
  synopsis: 'Register the labelled containers of a Docker host (orchestrator sync)',
  help,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      docker: { type: 'string' },
      registry: { type: 'string' },
      ...REGISTRY_TLS_FLAGS,
      token: { type: 'string' },
      'label-prefix': { type: 'string' },
      'node-name': { type: 'string' },
      address: { type: 'string' },
      admin: { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
    });
    if (positionals[0] !== 'docker' || positionals.length > 1)
      throw errors.cliUsage('give the runtime to follow: meshwork sync docker [flags]');
    const flags = pickFlags(values, {
      docker: 'docker',
      registry: ['registry', splitList],
      ...REGISTRY_TLS_OPTION_KEYS,
      token: 'token',
      'label-prefix': 'labelPrefix',
      'node-name': 'nodeName',
      address: 'address',
      admin: 'admin',
      'log-level': 'logLevel',
    });
    const options = resolveSyncOptions(configInput(values.config, io.env, flags));
    const logger = createLogger({ level: options.logLevel });
    const sync = await startSync(options, logger, createMetricsRegistry());
    io.stdout.write(
      `meshwork sync docker: ${options.docker} -> ${options.registry.join(',')} as set ${sync.set}${sync.adminUrl === undefined ? '' : ` (admin ${sync.adminUrl})`}\n`,
    );
    return exitOnSignal(logger, () => sync.stop());
  },
};
