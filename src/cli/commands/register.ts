/** @module `meshwork register`: registers an instance from flags or a JSON/YAML file. */
import { errors } from '../../core/errors.js';
import { readConfigFile } from '../../config/config-sources.js';
import type { CheckInput, RegistrationInput } from '../../protocol/registration.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, pickFlags, type Command } from '../command.js';

const help = `Usage: meshwork register --service NAME --address ADDR --port N [flags]
       meshwork register --file instance.yaml

Registers (or updates) an instance; prints its id.

Flags:
  --service NAME          service name (lowercase letters, digits, hyphens)
  --id ID                 instance id (generated when absent)
  --address ADDR          IPv4, IPv6 or hostname
  --port N                main port
  --named-port NAME=N     a named port (repeatable), e.g. --named-port grpc=9090
  --tag TAG               repeatable
  --meta KEY=VALUE        repeatable (version, environment, region, zone, ...)
  --weight N              weight when passing (default 1)
  --priority N            lower is preferred (default 0)
  --ttl DURATION          add a TTL check: send heartbeats within this period
  --http-check URL        add an HTTP check
  --tcp-check HOST:PORT   add a TCP check
  --interval DURATION     probe interval of the http/tcp check (default 10s)
  --deregister-after DUR  deregister when critical this long
  --file FILE             read the registration (native API JSON or YAML) from a file
  --json                  print the stored instance as JSON

Examples:
  meshwork register --service payments --id payments-1 --address 10.0.0.5 --port 8080 --ttl 15s
  meshwork register --service web --address 127.0.0.1 --port 3000 --http-check http://127.0.0.1:3000/health
`;

function pairs(values: readonly string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw errors.cliUsage(`${flag} takes KEY=VALUE, got "${v}"`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

function whole(v: string, flag: string): number {
  if (!/^\d+$/.test(v)) throw errors.cliUsage(`${flag} must be a whole number, got "${v}"`);
  return Number(v);
}

/** `--named-port NAME=N` values as the instance's ports. */
function namedPorts(values: readonly string[]): Record<string, number> {
  const named = Object.entries(pairs(values, '--named-port'));
  return Object.fromEntries(named.map(([name, v]) => [name, whole(v, '--named-port')]));
}

export const command: Command = {
  name: 'register',
  synopsis: 'Register an instance',
  help,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...CLIENT_FLAGS,
      service: { type: 'string' },
      id: { type: 'string' },
      address: { type: 'string' },
      port: { type: 'string' },
      'named-port': { type: 'string', multiple: true },
      tag: { type: 'string', multiple: true },
      meta: { type: 'string', multiple: true },
      weight: { type: 'string' },
      priority: { type: 'string' },
      ttl: { type: 'string' },
      'http-check': { type: 'string' },
      'tcp-check': { type: 'string' },
      interval: { type: 'string' },
      'deregister-after': { type: 'string' },
      file: { type: 'string' },
    });
    if (positionals.length > 0) throw errors.cliUsage(`unexpected argument "${positionals[0]}"`);
    let input: RegistrationInput;
    if (values.file !== undefined) {
      input = readConfigFile(values.file) as unknown as RegistrationInput;
    } else {
      if (
        values.service === undefined ||
        values.address === undefined ||
        values.port === undefined
      ) {
        throw errors.cliUsage('--service, --address and --port are required (or --file)');
      }
      const deregister = pickFlags(values, { 'deregister-after': 'deregisterCriticalAfter' });
      const probe = { ...pickFlags(values, { interval: 'interval' }), ...deregister };
      const checks: CheckInput[] = [];
      if (values.ttl !== undefined) checks.push({ ttl: values.ttl, ...deregister });
      if (values['http-check'] !== undefined) checks.push({ http: values['http-check'], ...probe });
      if (values['tcp-check'] !== undefined) checks.push({ tcp: values['tcp-check'], ...probe });
      // In the order the values are checked: the first bad one is the usage error.
      const { port = 0, ...fields } = pickFlags(values, {
        'named-port': ['ports', namedPorts],
        weight: ['weights', (v) => ({ passing: whole(v, '--weight'), warning: 1 })],
        priority: ['priority', (v) => whole(v, '--priority')],
        port: ['port', (v) => whole(v, '--port')],
        id: 'id',
        tag: 'tags',
        meta: ['meta', (v) => pairs(v, '--meta')],
      });
      input = {
        service: values.service,
        address: values.address,
        port,
        ...fields,
        ...(checks.length === 0 ? {} : { checks }),
      };
    }
    const r = await withClient(values, io, (c) => c.register(input));
    if (values.json === true) printJson(io, r);
    else
      io.stdout.write(
        `registered ${r.instance.id} (${r.instance.service}, ${r.instance.status}, index ${r.index})\n`,
      );
    return 0;
  },
};
