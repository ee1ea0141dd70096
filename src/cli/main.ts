/** @module The CLI entry: maps command names to lazily imported modules, so --help stays fast. */
import { isMeshError, ERROR_CODES } from '../core/errors.js';
import type { Command, Io } from './command.js';
import { boundYoungGeneration } from '../sidecar/young-generation.js';

interface CommandEntry {
  readonly synopsis: string;
  readonly load: () => Promise<{ command: Command }>;
  /** A process that must stay small: its young generation is bounded before the load. */
  readonly small?: boolean;
}

const COMMANDS: Record<string, CommandEntry> = {
  agent: { synopsis: 'Run the registry agent', load: () => import('./commands/agent.js') },
  gateway: {
    synopsis: 'Run the HTTP gateway (server-side discovery)',
    load: () => import('./commands/gateway.js'),
  },
  sidecar: {
    synopsis: 'Run the sidecar proxy beside an app (registration, health, routing, lifecycle)',
    load: () => import('./commands/sidecar.js'),
    small: true,
  },
  sync: {
    synopsis: 'Register the labelled containers of a Docker host (orchestrator sync)',
    load: () => import('./commands/sync.js'),
  },
  services: {
    synopsis: 'List services with counts by status',
    load: () => import('./commands/services.js'),
  },
  instances: {
    synopsis: "List a service's instances",
    load: () => import('./commands/instances.js'),
  },
  register: { synopsis: 'Register an instance', load: () => import('./commands/register.js') },
  deregister: { synopsis: 'Remove an instance', load: () => import('./commands/deregister.js') },
  heartbeat: {
    synopsis: "Send a heartbeat for an instance's TTL checks",
    load: () => import('./commands/heartbeat.js'),
  },
  watch: {
    synopsis: 'Stream changes to a service (or the catalog)',
    load: () => import('./commands/watch.js'),
  },
  members: {
    synopsis: 'List the agents of the cluster',
    load: () => import('./commands/members.js'),
  },
  'proxy-status': {
    synopsis: 'List the mesh proxies and whether they are in sync',
    load: () => import('./commands/proxy-status.js'),
  },
  top: {
    synopsis: 'Show the mesh call graph: rps, errors and p99 per edge',
    load: () => import('./commands/top.js'),
  },
  config: {
    synopsis: 'Validate the agent configuration',
    load: () => import('./commands/config.js'),
  },
  acl: {
    synopsis: 'Bootstrap registry ACLs, create policies and tokens',
    load: () => import('./commands/acl.js'),
  },
  apply: {
    synopsis: 'Apply mesh resources and instances from a file, all or nothing',
    load: () => import('./commands/apply.js'),
  },
  get: {
    synopsis: 'Show mesh resources (virtualservices, destinationrules, ...)',
    load: () => import('./commands/get.js'),
  },
  delete: {
    synopsis: 'Remove a mesh resource',
    load: () => import('./commands/delete.js'),
  },
  ca: {
    synopsis: "Show the mesh CA's trust bundle, or rotate its root",
    load: () => import('./commands/ca.js'),
  },
};

const USAGE = `Usage: meshwork <command> [flags]

Commands:
${Object.entries(COMMANDS)
  .map(([n, c]) => `  ${n.padEnd(14)}${c.synopsis}`)
  .join('\n')}

Run "meshwork <command> --help" for a command's flags and examples.
Client commands reach the agent at --registry, else $MESHWORK_ADDR, else http://127.0.0.1:8500,
with the ACL token of --token, else $MESHWORK_TOKEN (none by default).
An https:// agent: --registry-ca FILE (else $MESHWORK_CACERT) is the CA its certificate is checked
against; --registry-cert FILE and --registry-key FILE (else $MESHWORK_CLIENT_CERT and
$MESHWORK_CLIENT_KEY) give a client certificate when it requires one (docs/security.md).
`;

/** Runs the CLI; resolves with the exit code. */
export async function main(
  argv: readonly string[],
  io: Io = { stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(USAGE);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === 'version') {
    io.stdout.write('meshwork 0.1.0\n');
    return 0;
  }
  const entry = COMMANDS[name];
  if (entry === undefined) {
    io.stderr.write(`meshwork: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  // Past "--" the arguments are another program's (the sidecar's app), its --help included.
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  const help = own.includes('--help') || own.includes('-h');
  if (entry.small === true && !help) boundYoungGeneration(io.env, process.execArgv);
  const { command } = await entry.load();
  if (help) {
    io.stdout.write(command.help);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (isMeshError(err, ERROR_CODES.CLI_USAGE)) {
      io.stderr.write(`meshwork ${name}: ${err.message}\n\n${command.help}`);
      return 2;
    }
    if (
      isMeshError(err, ERROR_CODES.CONFIG_INVALID) ||
      isMeshError(err, ERROR_CODES.CONFIG_UNREADABLE)
    ) {
      io.stderr.write(`meshwork ${name}: ${err.message}\n`);
      return 2;
    }
    // The code tells the operator which page of docs/errors.md to read.
    const code = isMeshError(err) ? ` (${err.code})` : '';
    io.stderr.write(`meshwork ${name}: ${(err as Error).message}${code}\n`);
    return 1;
  }
}
