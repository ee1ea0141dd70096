/** @module `meshwork get <kind> [name]`: mesh resources as a table, YAML or JSON. */
import { errors } from '../../core/errors.js';
import { MESH_KIND_INFO } from '../../protocol/mesh/resource.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, type Command } from '../command.js';
import { KIND_HELP, kindArgument } from '../mesh-kind.js';
import { resourcesYaml, resourceTable } from '../mesh-output.js';

export const command: Command = {
  name: 'get',
  synopsis: 'Show mesh resources (virtualservices, destinationrules, ...)',
  help: `Usage: meshwork get <kind> [name] [-n NAMESPACE] [-o yaml|json] [--registry URL [--registry-ca FILE]]

Lists the mesh resources of a kind (of every namespace, or of -n), or shows one by name (in
namespace "default" unless -n). The default output is a table: NAME, NAMESPACE, CREATED-INDEX,
MODIFIED-INDEX. -o yaml prints the resources as YAML documents that "meshwork apply -f" takes
back unchanged; -o json (or --json) prints the API's answer.

Kinds (plural, short name; the kind itself works too, in any case):
${KIND_HELP}

Examples:
  meshwork get virtualservices
  meshwork get dr reviews -o yaml
  meshwork get virtualservices -o yaml > mesh.yaml && meshwork apply -f mesh.yaml
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...CLIENT_FLAGS,
      namespace: { type: 'string', short: 'n' },
      output: { type: 'string', short: 'o' },
    });
    if (positionals.length > 2) throw errors.cliUsage(`unexpected argument "${positionals[2]}"`);
    const kind = kindArgument(positionals[0]);
    const name = positionals[1];
    const output = values.json === true ? 'json' : (values.output ?? 'table');
    if (output !== 'table' && output !== 'yaml' && output !== 'json')
      throw errors.cliUsage(`-o takes yaml or json, not "${output}"`);
    const plural = MESH_KIND_INFO[kind].plural;
    const r =
      name === undefined
        ? await withClient(values, io, (c) =>
            c.meshResources({
              kind: plural,
              ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
            }),
          )
        : await withClient(values, io, (c) =>
            c.meshResource(plural, values.namespace ?? 'default', name),
          );
    const stored = 'resources' in r ? r.resources : [r.resource];
    if (output === 'json') printJson(io, r);
    else if (output === 'yaml') io.stdout.write(resourcesYaml(stored.map((s) => s.resource)));
    else io.stdout.write(resourceTable(stored));
    return 0;
  },
};
