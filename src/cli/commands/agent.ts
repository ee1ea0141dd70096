/** @module `meshwork agent`: runs the registry agent until SIGINT/SIGTERM. */
import { parseDurationMs } from '../../core/duration.js';
import { errors } from '../../core/errors.js';
import { resolveAgentOptions } from '../../agent/options.js';
import { createLogger } from '../../telemetry/logger.js';
import {
  configInput,
  exitOnSignal,
  parseFlags,
  pickFlags,
  reloadOnSighup,
  type Command,
} from '../command.js';

const help = `Usage: meshwork agent [flags]

Runs the registry agent: the catalog, health checks and the HTTP API.

Flags:
  --http <host:port|off>  HTTP API address (default 127.0.0.1:8500; port 0 picks one); off
                        serves the API over HTTPS only
  --https <host:port|off>  HTTPS API address, beside --http or alone (default off; Consul's
                        port is 8501): the same API over TLS with --tls-cert-file
  --tls-cert-file <pem> certificate the HTTPS API serves (leaf first, then its chain)
  --tls-key-file <pem>  its private key (unencrypted PEM)
  --tls-ca-file <pem>   CA bundle client certificates are checked against
  --tls-verify-incoming require a client certificate signed by --tls-ca-file on HTTPS
  --tls-auto            the HTTPS certificate from the agent's mesh CA instead of files
                        (renewed by itself; clients trust "meshwork ca roots")
  --allowed-hosts <names>  comma-separated Host names the API answers besides IP addresses,
                        localhost and the hostname ("*.domain" for a domain, "*" for any)
  --allowed-origins <origins>  comma-separated origins of web pages that may call the API
                        (https://ui.example.com; "*" for any)
  --data-dir <dir>      Embedded store folder (default ./.meshwork/data)
  --dev                 In-memory store: nothing survives a restart
  --accept-data-loss    Start even if the store lost commits it had made durable (it is behind
                        <data-dir>/catalog.index): see docs/operations.md before using it
  --store <kind>        sqlite (default) | memory | etcd (cluster mode: see docs/operations.md)
  --etcd-endpoints <urls>  comma-separated etcd client URLs (default http://127.0.0.1:2379)
  --etcd-ca <file>      PEM CA of etcd's certificate (TLS to https:// endpoints)
  --etcd-cert <file>, --etcd-key <file>  client certificate for an etcd with --client-cert-auth
  --etcd-username <user>, --etcd-password <pw>  etcd user (auth enabled); prefer the env var
                        MESHWORK_AGENT__ETCD_PASSWORD or the config file to a flag
  --config <file>       YAML/JSON config file; its "services" are registered (source config)
  --node-name <name>    This agent's node name (default: the hostname)
  --datacenter <dc>     Datacenter the Consul API reports (default dc1)
  --consul-legacy-verbs <true|false>  accept GET on Consul write endpoints, as python-consul
                        0.7 sends them (default true; browser requests are refused anyway)
  --trust-domain <td>   SPIFFE trust domain of the mesh CA's leaves (default cluster.local)
  --ca-leaf-ttl <dur>   Lifetime of the leaf certificates the mesh CA signs (default 24h)
  --acl-default-policy <allow|deny>  turn registry ACLs on, with this policy where no rule of a
                        token matches (docs/security.md, "Registry ACLs"); deny is the safe one
  --acl-enabled         turn registry ACLs on (default policy: allow, as Consul's)
  --acl-dns             with ACLs on, DNS answers only what the anonymous token may read
  --audit-log <file|->  append a JSON line per write to <file> ("-": the agent's log)
  --http-max-conns-per-client <n>  concurrent connections one client IP may hold (default 200;
                        0: no cap); past it a connection is answered 429 and closed
  --log-level <level>   error | warn | info | debug | silent (default info)
  --dns <host:port|off> DNS interface, UDP and TCP (default 127.0.0.1:8600; port 0 picks one)
  --dns-domain <name>   DNS domain (default consul); --dns-alt-domain <name> answers the same names

Env: MESHWORK_AGENT__HTTP, MESHWORK_AGENT__HTTPS, MESHWORK_TLS__CERT_FILE ... (docs/security.md),
     MESHWORK_AGENT__DATA_DIR, MESHWORK_AGENT__DEV, MESHWORK_AGENT__LOG_LEVEL ...
     MESHWORK_ACL__ENABLED, MESHWORK_ACL__DEFAULT_POLICY, MESHWORK_ACL__DNS, MESHWORK_AGENT__AUDIT_LOG ...
     MESHWORK_DNS__LISTEN, MESHWORK_DNS__DOMAIN ... (docs/dns.md)
Precedence: defaults < config file < env < flags.
Signals: SIGHUP re-reads the config file and re-applies its services, and re-reads the TLS files
(new HTTPS connections get the new certificate); SIGTERM/SIGINT drain and exit 0.

Examples:
  meshwork agent
  meshwork agent --dev --http 127.0.0.1:0
  meshwork agent --config meshwork.yaml --data-dir /var/lib/meshwork
  meshwork agent --https 0.0.0.0:8501 --tls-cert-file agent.pem --tls-key-file agent-key.pem
  meshwork agent --acl-default-policy deny --audit-log /var/log/meshwork/audit.jsonl
`;

/** A comma-separated flag (`--etcd-endpoints a,b`) as the list it sets. */
function list(value: string): string[] {
  return value.split(',').map((e) => e.trim());
}

/** `--ca-leaf-ttl`'s duration (24h, 90m) as the milliseconds of `caLeafTtlMs`. */
function leafTtl(value: string): number {
  const ms = parseDurationMs(value);
  if (ms === undefined) throw errors.cliUsage('--ca-leaf-ttl takes a duration such as 24h or 90m');
  return ms;
}

/** `--acl-default-policy`'s value as the `acl` section it sets: ACLs on, with that policy. */
function aclDefaultPolicy(value: string): { enabled: true; defaultPolicy: 'allow' | 'deny' } {
  if (value !== 'allow' && value !== 'deny')
    throw errors.cliUsage('--acl-default-policy takes allow or deny');
  return { enabled: true, defaultPolicy: value };
}

/** `--http-max-conns-per-client`'s value. */
function maxConns(value: string): number {
  if (!/^\d{1,7}$/.test(value))
    throw errors.cliUsage('--http-max-conns-per-client takes a non-negative integer');
  return Number(value);
}

/** `--consul-legacy-verbs`'s value as the `consul` option it sets. */
function legacyVerbs(value: string): { legacyVerbs: boolean } {
  if (!/^(true|false)$/.test(value))
    throw errors.cliUsage('--consul-legacy-verbs takes true or false');
  return { legacyVerbs: value === 'true' };
}

export const command: Command = {
  name: 'agent',
  synopsis: 'Run the registry agent',
  help,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      http: { type: 'string' },
      https: { type: 'string' },
      'tls-cert-file': { type: 'string' },
      'tls-key-file': { type: 'string' },
      'tls-ca-file': { type: 'string' },
      'tls-verify-incoming': { type: 'boolean' },
      'tls-auto': { type: 'boolean' },
      'data-dir': { type: 'string' },
      dev: { type: 'boolean' },
      'accept-data-loss': { type: 'boolean' },
      store: { type: 'string' },
      'etcd-endpoints': { type: 'string' },
      'etcd-ca': { type: 'string' },
      'etcd-cert': { type: 'string' },
      'etcd-key': { type: 'string' },
      'etcd-username': { type: 'string' },
      'etcd-password': { type: 'string' },
      'allowed-hosts': { type: 'string' },
      'allowed-origins': { type: 'string' },
      config: { type: 'string' },
      'node-name': { type: 'string' },
      datacenter: { type: 'string' },
      'consul-legacy-verbs': { type: 'string' },
      'log-level': { type: 'string' },
      'trust-domain': { type: 'string' },
      'ca-leaf-ttl': { type: 'string' },
      dns: { type: 'string' },
      'dns-domain': { type: 'string' },
      'dns-alt-domain': { type: 'string' },
      'acl-default-policy': { type: 'string' },
      'acl-enabled': { type: 'boolean' },
      'acl-dns': { type: 'boolean' },
      'audit-log': { type: 'string' },
      'http-max-conns-per-client': { type: 'string' },
    });
    if (positionals.length > 0) throw errors.cliUsage(`unexpected argument "${positionals[0]}"`);
    const dns = pickFlags(values, {
      dns: 'listen',
      'dns-domain': 'domain',
      'dns-alt-domain': 'altDomain',
    });
    const tls = pickFlags(values, {
      'tls-cert-file': 'certFile',
      'tls-key-file': 'keyFile',
      'tls-ca-file': 'caFile',
      'tls-verify-incoming': 'verifyIncoming',
      'tls-auto': 'auto',
    });
    const acl = {
      ...(values['acl-enabled'] === true ? { enabled: true } : {}),
      ...(values['acl-dns'] === true ? { dns: true } : {}),
      ...(values['acl-default-policy'] === undefined
        ? {}
        : aclDefaultPolicy(values['acl-default-policy'])),
    };
    const flags = {
      ...(Object.keys(acl).length > 0 ? { acl } : {}),
      ...pickFlags(values, {
        http: 'http',
        https: 'https',
        'data-dir': 'dataDir',
        dev: 'dev',
        'accept-data-loss': 'acceptDataLoss',
        store: 'store',
        'node-name': 'nodeName',
        'log-level': 'logLevel',
        datacenter: 'datacenter',
        'etcd-endpoints': ['etcdEndpoints', list],
        'etcd-ca': 'etcdCa',
        'etcd-cert': 'etcdCert',
        'etcd-key': 'etcdKey',
        'etcd-username': 'etcdUsername',
        'etcd-password': 'etcdPassword',
        'allowed-hosts': ['allowedHosts', list],
        'allowed-origins': ['allowedOrigins', list],
        'trust-domain': 'trustDomain',
        'ca-leaf-ttl': ['caLeafTtlMs', leafTtl],
        'audit-log': 'auditLog',
        'http-max-conns-per-client': ['httpMaxConnsPerClient', maxConns],
      }),
      ...(Object.keys(dns).length > 0 ? { dns } : {}),
      ...(Object.keys(tls).length > 0 ? { tls } : {}),
      ...pickFlags(values, { 'consul-legacy-verbs': ['consul', legacyVerbs] }),
    };
    const load = () => resolveAgentOptions(configInput(values.config, io.env, flags));
    const options = load();
    const logger = createLogger({ level: options.logLevel });
    // The runtime (the whole agent: ~880 modules, ~1 s of CPU) loads once the options hold, so
    // bad flags or config files exit 2 at once.
    const { startAgent } = await import('../agent-runtime.js');
    const agent = await startAgent(options, logger);
    io.stdout.write(
      `meshwork agent listening on ${agent.url} (store: ${agent.registry.storeKind})\n`,
    );
    if (agent.httpsUrl !== undefined) {
      const verify = options.tls.verifyIncoming ? ' (client certificates required)' : '';
      io.stdout.write(`meshwork agent HTTPS on ${agent.httpsUrl}${verify}\n`);
    }
    if (options.acl.enabled)
      io.stdout.write(`meshwork ACLs enforced (default policy ${options.acl.defaultPolicy})\n`);
    if (agent.dns !== undefined) {
      const { host, port } = agent.dns;
      io.stdout.write(
        `meshwork DNS on ${host.includes(':') ? `[${host}]` : host}:${port} (udp+tcp, domain ${options.dns.domain})\n`,
      );
    }

    reloadOnSighup(
      logger,
      values.config,
      load,
      (next) => {
        agent.applyConfigServices(next.services).catch((err: unknown) => {
          logger.error({ err }, 'SIGHUP: applying config services failed');
        });
      },
      // A broken file keeps the running config: nothing is removed because of a typo.
      (err) =>
        logger.error(
          { err: (err as Error).message },
          'SIGHUP: config invalid, keeping the running config',
        ),
    );

    // The certificate may have been renewed on disk: new HTTPS connections get the new one, with
    // or without a config file; bad files keep the running certificate.
    if (agent.httpsUrl !== undefined) {
      process.on('SIGHUP', () => {
        try {
          agent.reloadTls(load().tls);
        } catch (err) {
          logger.error(
            { err: (err as Error).message },
            'SIGHUP: TLS files invalid, keeping the running certificate',
          );
        }
      });
    }

    return exitOnSignal(logger, async (signal) => {
      logger.info({ signal }, 'draining');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          logger.warn({ timeoutMs: options.shutdownTimeoutMs }, 'drain deadline passed, exiting');
          resolve();
        }, options.shutdownTimeoutMs);
        timer.unref();
      });
      const closed = agent.close().then(() => logger.info({}, 'stopped'));
      await Promise.race([closed, deadline]);
      clearTimeout(timer);
    });
  },
};
