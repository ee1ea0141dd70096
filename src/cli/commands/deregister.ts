/** @module `meshwork deregister <id>`: removes an instance. */
import { errors } from '../../core/errors.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, type Command } from '../command.js';

export const command: Command = {
  name: 'deregister',
  synopsis: 'Remove an instance',
  help: `Usage: meshwork deregister <instance-id> [--json] [--registry URL [--registry-ca FILE]]

Examples:
  meshwork deregister payments-1
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, CLIENT_FLAGS);
    const id = positionals[0];
    if (id === undefined || positionals.length > 1)
      throw errors.cliUsage('give exactly one instance id');
    const r = await withClient(values, io, (c) => c.deregister(id));
    if (values.json === true) printJson(io, r);
    else io.stdout.write(`deregistered ${id} (index ${r.index})\n`);
    return 0;
  },
};
