/** @module `meshwork apply -f FILE`: makes the catalog match a file, declaratively. */
import { resolve } from 'node:path';
import { errors } from '../../core/errors.js';
import { readConfigFile } from '../../config/config-sources.js';
import type { RegistrationInput } from '../../protocol/registration.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, type Command } from '../command.js';

export const command: Command = {
  name: 'apply',
  synopsis: 'Make the catalog match a file, declaratively',
  help: `Usage: meshwork apply -f services.yaml [--set NAME] [--json] [--registry URL]

Creates and updates the instances listed under "services:" in the file, and removes the
instances that an earlier apply of the same set declared and the file no longer lists.
Nothing else in the catalog is touched. The set is the file's "set:" key, else --set, else
the file's absolute path.

File:
  set: payments-static          # optional
  services:
    - service: payments
      id: payments-1
      address: 10.0.0.5
      port: 8080
      tags: [v2]
      checks:
        - http: http://10.0.0.5:8080/health
          interval: 5s

Examples:
  meshwork apply -f services.yaml
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...CLIENT_FLAGS,
      file: { type: 'string', short: 'f' },
      set: { type: 'string' },
    });
    if (positionals.length > 0) throw errors.cliUsage(`unexpected argument "${positionals[0]}"`);
    if (values.file === undefined) throw errors.cliUsage('-f FILE is required');
    const doc = readConfigFile(values.file);
    const services = doc.services ?? [];
    if (!Array.isArray(services)) {
      throw errors.configInvalid([`${values.file}: services: must be a list of registrations`]);
    }
    const set =
      typeof doc.set === 'string' && doc.set !== ''
        ? doc.set
        : (values.set ?? `file:${resolve(values.file)}`);
    const r = await withClient(values, io, (c) => c.apply(set, services as RegistrationInput[]));
    if (values.json === true) printJson(io, r);
    else {
      io.stdout.write(
        `applied ${set}: ${r.created.length} created, ${r.updated.length} updated, ${r.unchanged.length} unchanged, ${r.deleted.length} deleted (index ${r.index})\n`,
      );
      for (const id of r.created) io.stdout.write(`  + ${id}\n`);
      for (const id of r.updated) io.stdout.write(`  ~ ${id}\n`);
      for (const id of r.deleted) io.stdout.write(`  - ${id}\n`);
    }
    return 0;
  },
};
