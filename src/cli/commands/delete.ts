/** @module `meshwork delete <kind> <name>`: removes a mesh resource. */
import { errors } from '../../core/errors.js';
import { MESH_KIND_INFO } from '../../protocol/mesh/resource.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, type Command } from '../command.js';
import { KIND_HELP, kindArgument } from '../mesh-kind.js';
import { resourceLabel } from '../mesh-output.js';

export const command: Command = {
  name: 'delete',
  synopsis: 'Remove a mesh resource',
  help: `Usage: meshwork delete <kind> <name> [-n NAMESPACE] [--json] [--registry URL [--registry-ca FILE]]

Removes one mesh resource (in namespace "default" unless -n). Refused while another resource
refers to it (a DestinationRule whose subsets a VirtualService routes to): the message names
the referrer. Exit code 1 when there is no such resource.

Kinds (plural, short name; the kind itself works too, in any case):
${KIND_HELP}

Examples:
  meshwork delete virtualservice reviews
  meshwork delete dr reviews -n shop
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...CLIENT_FLAGS,
      namespace: { type: 'string', short: 'n' },
    });
    const kind = kindArgument(positionals[0]);
    const name = positionals[1];
    if (name === undefined || positionals.length > 2)
      throw errors.cliUsage('give a kind and one name');
    const namespace = values.namespace ?? 'default';
    const r = await withClient(values, io, (c) =>
      c.meshDelete(MESH_KIND_INFO[kind].plural, namespace, name),
    );
    const label = resourceLabel(`${kind}/${namespace}/${name}`);
    if (values.json === true) printJson(io, r);
    else if (r.deleted) io.stdout.write(`${label} deleted (index ${r.index})\n`);
    else {
      io.stderr.write(`meshwork delete: ${label} not found\n`);
      return 1;
    }
    return 0;
  },
};
