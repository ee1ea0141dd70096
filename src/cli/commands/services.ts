/** @module `meshwork services`: services with counts by status. */
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, table, type Command } from '../command.js';

export const command: Command = {
  name: 'services',
  synopsis: 'List services with counts by status',
  help: `Usage: meshwork services [--json] [--registry URL [--registry-ca FILE]]

Lists every service with its instance counts by status and its tags.

Examples:
  meshwork services
  meshwork services --json | jq '.services[].name'
  meshwork services --registry https://10.0.0.2:8501 --registry-ca ca.pem
`,
  async run(argv, io) {
    const { values } = parseFlags(argv, CLIENT_FLAGS, false);
    const r = await withClient(values, io, (c) => c.services());
    if (values.json === true) printJson(io, r);
    else {
      io.stdout.write(
        table(
          ['SERVICE', 'INSTANCES', 'PASSING', 'WARNING', 'CRITICAL', 'MAINT', 'STARTING', 'TAGS'],
          r.services.map((s) => [
            s.name,
            String(s.instances),
            String(s.byStatus.passing),
            String(s.byStatus.warning),
            String(s.byStatus.critical),
            String(s.byStatus.maintenance),
            String(s.byStatus.starting),
            s.tags.join(','),
          ]),
        ),
      );
    }
    return 0;
  },
};
