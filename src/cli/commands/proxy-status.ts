/** @module `meshwork proxy-status`: every proxy on a push stream, and whether it is in sync. */
import type { ProxyStatus } from '../../protocol/mesh/snapshot.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, table, type Command } from '../command.js';

/** Versions are content hashes: the table shows their first characters, as git shows commits. */
const VERSION_CHARS = 12;
const short = (version: string | undefined): string =>
  version === undefined ? '-' : version.slice(0, VERSION_CHARS);

/** The table row of one proxy (ID KIND NAME NAMESPACE SENT ACKED STATE AGENT ERROR). */
export function proxyRow(p: ProxyStatus): string[] {
  return [
    p.id,
    p.kind,
    p.name,
    p.namespace,
    short(p.sent),
    short(p.acked),
    p.state,
    p.agent,
    // One line per proxy: a NACK's reason may hold newlines.
    p.error === undefined ? '' : p.error.replace(/\s+/g, ' '),
  ];
}

export const command: Command = {
  name: 'proxy-status',
  synopsis: 'List the mesh proxies and whether they run the latest snapshot',
  help: `Usage: meshwork proxy-status [--json] [--registry URL [--registry-ca FILE]]

Lists every gateway and sidecar holding a push stream to an agent of the cluster: the version
of its snapshot the control plane sent, the version it ACKed (runs), and its state:
  SYNCED  it runs the version sent
  STALE   a newer version was sent and not answered yet
  NACKED  it refused the version sent (ERROR says why) and runs the one it ACKed before
An agent of the cluster that does not answer is reported on stderr; its proxies are missing.

Examples:
  meshwork proxy-status
  meshwork proxy-status --json | jq '.proxies[] | select(.state != "SYNCED")'
`,
  async run(argv, io) {
    const { values } = parseFlags(argv, CLIENT_FLAGS, false);
    const r = await withClient(values, io, (c) => c.meshProxies());
    if (values.json === true) printJson(io, r);
    else {
      io.stdout.write(
        table(
          ['ID', 'KIND', 'NAME', 'NAMESPACE', 'SENT', 'ACKED', 'STATE', 'AGENT', 'ERROR'],
          r.proxies.map(proxyRow),
        ),
      );
    }
    for (const u of r.unreachable)
      io.stderr.write(
        `meshwork proxy-status: agent ${u.agent} (${u.url}) did not answer: ${u.error}\n`,
      );
    return 0;
  },
};
