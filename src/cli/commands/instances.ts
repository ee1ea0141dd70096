/** @module `meshwork instances <service>`: a service's instances with their status. */
import { errors } from '../../core/errors.js';
import { INSTANCE_STATUSES, type InstanceStatus } from '../../core/types.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, pickFlags, table, type Command } from '../command.js';

/** `--status S[,S]` as the statuses to list (empty entries ignored). */
function statuses(value: string): InstanceStatus[] {
  const status = value.split(',').filter((s) => s !== '');
  for (const s of status) {
    if (!(INSTANCE_STATUSES as readonly string[]).includes(s)) {
      throw errors.cliUsage(`--status must be one of ${INSTANCE_STATUSES.join(', ')}`);
    }
  }
  return status as InstanceStatus[];
}

export const command: Command = {
  name: 'instances',
  synopsis: "List a service's instances",
  help: `Usage: meshwork instances <service> [--status S[,S]] [--tag T]... [--json] [--registry URL [--registry-ca FILE]]

Lists the instances of a service with address, status and tags.

Examples:
  meshwork instances payments
  meshwork instances payments --status passing --tag v2 --json
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...CLIENT_FLAGS,
      status: { type: 'string' },
      tag: { type: 'string', multiple: true },
    });
    const service = positionals[0];
    if (service === undefined || positionals.length > 1)
      throw errors.cliUsage('give exactly one service name');
    const query = pickFlags(values, { status: ['status', statuses], tag: 'tags' });
    const r = await withClient(values, io, (c) => c.instances(service, query));
    if (values.json === true) printJson(io, r);
    else {
      io.stdout.write(
        table(
          ['ID', 'ADDRESS', 'STATUS', 'TAGS', 'REASON'],
          r.instances.map((i) => [
            i.id,
            `${i.address.includes(':') ? `[${i.address}]` : i.address}:${i.port}`,
            i.status,
            i.tags.join(','),
            i.statusReason,
          ]),
        ),
      );
    }
    return 0;
  },
};
