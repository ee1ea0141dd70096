/** @module `meshwork ca roots|rotate`: the mesh CA's trust bundle, and root rotation. */
import { parseDurationMs } from '../../core/duration.js';
import { errors } from '../../core/errors.js';
import type { CaRootsResponse } from '../../protocol/mesh/ca.js';
import { printJson, withClient } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, table, type Command, type Io } from '../command.js';

const help = `Usage: meshwork ca roots [--json] [--registry URL] [--token TOKEN]
       meshwork ca rotate [--overlap DURATION] [--json] [--registry URL] [--token TOKEN]

The mesh CA lives in the agent: it made its root (EC P-256) on its first start and keeps it in
the store, so every agent of a cluster signs sidecar certificates with the same root.

  roots    Prints the trust bundle (every root, PEM, the active one first): what a peer
           verifies sidecar certificates against. --json prints the API's answer (ids,
           validity, which root is active and when a retiring one leaves).
  rotate   Makes a new root and signs new leaves with it. The old root stays in the bundle
           for --overlap (default: the leaf lifetime, 24h), so leaves it signed keep
           verifying until the sidecars have renewed theirs; then it is removed. Prints the
           roots after the rotation. Needs an operator token when ACLs are on.

Flags:
  --overlap <duration>  how long the old root stays in the bundle (30m, 1h, 2h30m)
  --token <token>       ACL token (default $MESHWORK_TOKEN)

Examples:
  meshwork ca roots > bundle.pem
  meshwork ca roots --json
  meshwork ca rotate --overlap 1h
`;

const FLAGS = CLIENT_FLAGS;

function printRoots(io: Io, r: CaRootsResponse): void {
  io.stdout.write(
    table(
      ['ID', 'ACTIVE', 'NOT-AFTER', 'RETIRES-AT'],
      r.roots.map((x) => [x.id.slice(0, 16), String(x.active), x.notAfter, x.retiresAt ?? '-']),
    ),
  );
}

export const command: Command = {
  name: 'ca',
  synopsis: "Show the mesh CA's trust bundle, or rotate its root",
  help,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === 'roots') {
      const { values } = parseFlags(rest, FLAGS, false);
      const r = await withClient(values, io, (c) => c.caRoots());
      if (values.json === true) printJson(io, r);
      else io.stdout.write(r.bundlePem);
      return 0;
    }
    if (sub === 'rotate') {
      const { values } = parseFlags(rest, { ...FLAGS, overlap: { type: 'string' } }, false);
      const overlap = values.overlap;
      if (overlap !== undefined && parseDurationMs(overlap) === undefined)
        throw errors.cliUsage(`--overlap takes a duration such as 1h or 30m, not "${overlap}"`);
      const r = await withClient(values, io, (c) =>
        c.caRotate(overlap === undefined ? {} : { overlap }),
      );
      if (values.json === true) printJson(io, r);
      else printRoots(io, r);
      return 0;
    }
    throw errors.cliUsage(
      sub === undefined ? 'give a subcommand: roots or rotate' : `unknown subcommand "${sub}"`,
    );
  },
};
