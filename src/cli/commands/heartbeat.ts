/** @module `meshwork heartbeat <id>`: a heartbeat for an instance's TTL checks. */
import { errors } from '../../core/errors.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, type Command } from '../command.js';

export const command: Command = {
  name: 'heartbeat',
  synopsis: "Send a heartbeat for an instance's TTL checks",
  help: `Usage: meshwork heartbeat <instance-id> [--status passing|warning|critical] [--output TEXT] [--json]

Resets the TTL timer of the instance's ttl checks and reports its status.

Examples:
  meshwork heartbeat payments-1
  meshwork heartbeat payments-1 --status warning --output "queue backlog 900"
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...CLIENT_FLAGS,
      status: { type: 'string' },
      output: { type: 'string' },
    });
    const id = positionals[0];
    if (id === undefined || positionals.length > 1)
      throw errors.cliUsage('give exactly one instance id');
    const status = values.status ?? 'passing';
    if (status !== 'passing' && status !== 'warning' && status !== 'critical') {
      throw errors.cliUsage('--status must be passing, warning or critical');
    }
    const r = await withClient(values, io, (c) => c.heartbeat(id, status, values.output));
    if (values.json === true) printJson(io, r);
    else io.stdout.write(`${id}: ${r.status} (index ${r.index})\n`);
    return 0;
  },
};
