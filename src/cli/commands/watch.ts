/** @module `meshwork watch [service]`: streams changes until interrupted. */
import { errors } from '../../core/errors.js';
import type { WatchEvent } from '../../protocol/api-types.js';
import { withClient } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, type Command } from '../command.js';

export const command: Command = {
  name: 'watch',
  synopsis: 'Stream changes to a service (or the catalog)',
  help: `Usage: meshwork watch [service] [--json] [--registry URL [--registry-ca FILE]]

Prints the current instances, then one line per change, until Ctrl-C.
With --json, prints one watch event (snapshot, upsert, delete, reset) per line.

Examples:
  meshwork watch payments
  meshwork watch --json | jq -c 'select(.type == "upsert") | .instance.status'
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, CLIENT_FLAGS);
    if (positionals.length > 1) throw errors.cliUsage('give at most one service name');
    const service = positionals[0];
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const print = (ev: WatchEvent): void => {
      if (values.json === true) {
        io.stdout.write(`${JSON.stringify(ev)}\n`);
        return;
      }
      switch (ev.type) {
        case 'snapshot':
          io.stdout.write(`snapshot index=${ev.index} instances=${ev.instances.length}\n`);
          for (const i of ev.instances)
            io.stdout.write(`  ${i.service} ${i.id} ${i.address}:${i.port} ${i.status}\n`);
          break;
        case 'upsert':
          io.stdout.write(
            `upsert index=${ev.index} ${ev.instance.service} ${ev.instance.id} ${ev.instance.address}:${ev.instance.port} ${ev.instance.status}\n`,
          );
          break;
        case 'delete':
          io.stdout.write(`delete index=${ev.index} ${ev.service} ${ev.id}\n`);
          break;
        case 'reset':
          io.stdout.write(`reset index=${ev.index} ${ev.reason}\n`);
          break;
      }
    };
    try {
      await withClient(values, io, (c) => c.watch(service, print, ac.signal));
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return 0;
  },
};
