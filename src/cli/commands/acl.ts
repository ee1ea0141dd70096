/** @module `meshwork acl`: bootstrap the registry ACLs, create policies and tokens. */
import { readFileSync } from 'node:fs';
import { errors } from '../../core/errors.js';
import type { ConsulAclToken } from '../../protocol/acl.js';
import { printJson, withClient } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, type Command, type Io } from '../command.js';

const help = `Usage: meshwork acl bootstrap [--registry URL] [--json]
       meshwork acl policy create --name NAME --rules FILE|- [--description TEXT] [--token SECRET]
       meshwork acl token create --policy NAME [--policy NAME...] [--description TEXT] [--token SECRET]

Manages the registry ACLs of an agent started with --acl-default-policy (docs/security.md,
"Registry ACLs"). bootstrap makes the first management token, once: keep its SecretID safe.
policy create reads Consul rules (HCL or JSON) from FILE, or from stdin with "-". token create
makes a token linked to the named policies and prints its SecretID.
The token of the caller: --token, else MESHWORK_TOKEN.

Examples:
  meshwork acl bootstrap
  meshwork acl policy create --name orders --rules orders.hcl --token $MGMT
  echo 'service "orders" { policy = "write" }' | meshwork acl policy create --name orders --rules -
  meshwork acl token create --policy orders --description "orders sidecar" --token $MGMT
`;

function printToken(io: Io, t: ConsulAclToken): void {
  io.stdout.write(
    `AccessorID:   ${t.AccessorID}\nSecretID:     ${t.SecretID}\nDescription:  ${t.Description}\n` +
      `Policies:     ${t.Policies.map((p) => p.Name).join(', ')}\n`,
  );
}

/** Reads the rules: a file, or all of stdin for "-". */
function readRules(source: string, stdin: () => string): string {
  try {
    return source === '-' ? stdin() : readFileSync(source, 'utf8');
  } catch (err) {
    throw errors.cliUsage(`--rules: cannot read ${source}: ${(err as Error).message}`);
  }
}

export const command: Command = {
  name: 'acl',
  synopsis: 'Bootstrap registry ACLs, create policies and tokens',
  help,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...CLIENT_FLAGS,
      name: { type: 'string' },
      rules: { type: 'string' },
      description: { type: 'string' },
      policy: { type: 'string', multiple: true },
    });
    const what = positionals.join(' ');
    if (what === 'bootstrap') {
      const t = await withClient(values, io, (c) => c.aclBootstrap());
      if (values.json === true) printJson(io, t);
      else printToken(io, t);
      return 0;
    }
    if (what === 'policy create') {
      if (values.name === undefined) throw errors.cliUsage('policy create needs --name');
      if (values.rules === undefined) throw errors.cliUsage('policy create needs --rules FILE|-');
      const rules = readRules(values.rules, () => readFileSync(0, 'utf8'));
      const p = await withClient(values, io, (c) =>
        c.aclCreatePolicy({
          name: values.name as string,
          rules,
          ...(values.description === undefined ? {} : { description: values.description }),
        }),
      );
      if (values.json === true) printJson(io, p);
      else io.stdout.write(`ID:           ${p.ID}\nName:         ${p.Name}\n`);
      return 0;
    }
    if (what === 'token create') {
      const policies = (values.policy ?? []).flatMap((p) => p.split(',')).filter((p) => p !== '');
      if (policies.length === 0) throw errors.cliUsage('token create needs --policy NAME');
      const t = await withClient(values, io, (c) =>
        c.aclCreateToken({
          policies,
          ...(values.description === undefined ? {} : { description: values.description }),
        }),
      );
      if (values.json === true) printJson(io, t);
      else printToken(io, t);
      return 0;
    }
    throw errors.cliUsage(
      `unknown subcommand "${what}": use bootstrap, policy create or token create`,
    );
  },
};
