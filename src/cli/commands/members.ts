/** @module `meshwork members`: the agents of the cluster and their health. */
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, table, type Command } from '../command.js';

export const command: Command = {
  name: 'members',
  synopsis: 'List the agents of the cluster',
  help: `Usage: meshwork members [--json] [--registry URL [--registry-ca FILE]]

Lists the agents serving this catalog. In cluster mode (--store etcd) every agent keeps itself
listed under an etcd lease, so an agent that died drops out within the lease TTL (5 s).
Outside cluster mode the agent is the only member.

Examples:
  meshwork members
  meshwork members --registry http://10.0.0.2:8500 --json
`,
  async run(argv, io) {
    const { values } = parseFlags(argv, CLIENT_FLAGS, false);
    const r = await withClient(values, io, (c) => c.members());
    if (values.json === true) printJson(io, r);
    else {
      io.stdout.write(
        table(
          ['NODE', 'URL', 'STATUS', 'JOINED'],
          r.agents.map((a) => [a.nodeName, a.url, a.status, new Date(a.joinedAt).toISOString()]),
        ),
      );
    }
    return 0;
  },
};
