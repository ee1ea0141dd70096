/**
 * @module `meshwork config validate`: checks env and a config file, the agent's or (with
 * --gateway, --sidecar) the gateway's or the sidecar's, without starting anything.
 */
import { errors } from '../../core/errors.js';
import { resolveAgentOptions } from '../../agent/options.js';
import { resolveGatewayOptions } from '../../gateway/options.js';
import { resolveSidecarOptions } from '../../sidecar/options.js';
import { configInput, parseFlags, type Command } from '../command.js';

export const command: Command = {
  name: 'config',
  synopsis: 'Validate the agent, gateway or sidecar configuration (and print the effective one)',
  help: `Usage: meshwork config validate [--gateway | --sidecar] [--config FILE] [--print]

Resolves the agent's options exactly as "meshwork agent" would (defaults < file < env), or with
--gateway the gateway's as "meshwork gateway" would (routes, balancers, retry and outlier
settings included), or with --sidecar the sidecar's as "meshwork sidecar" would, and exits 0 when they are valid, 2 with every problem listed when not.
--print shows the effective configuration as JSON.

Examples:
  meshwork config validate --config meshwork.yaml
  meshwork config validate --gateway --config gateway.yaml
  meshwork config validate --sidecar --config sidecar.yaml
  MESHWORK_AGENT__HTTP=0.0.0.0:8500 meshwork config validate --print
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      config: { type: 'string' },
      print: { type: 'boolean' },
      gateway: { type: 'boolean' },
      sidecar: { type: 'boolean' },
    });
    if (values.gateway === true && values.sidecar === true)
      throw errors.cliUsage('give --gateway or --sidecar, not both');
    if (positionals[0] !== 'validate' || positionals.length > 1) {
      throw errors.cliUsage('the only subcommand is "validate"');
    }
    const source = configInput(values.config, io.env);
    const print = (options: object, summary: string): void => {
      io.stdout.write(
        values.print === true ? `${JSON.stringify(options, null, 2)}\n` : `${summary}\n`,
      );
    };
    if (values.gateway === true) {
      const gateway = resolveGatewayOptions(source);
      // The ACL token is a secret (in mesh mode it may write its service account's certificate).
      const shown = gateway.token === undefined ? gateway : { ...gateway, token: '(set)' };
      print(shown, `gateway configuration valid (${gateway.routes.length} routes)`);
    } else if (values.sidecar === true) {
      const sidecar = resolveSidecarOptions(source);
      // The ACL token is a secret: printed as set, never as itself.
      const shown = sidecar.token === undefined ? sidecar : { ...sidecar, token: '(set)' };
      print(shown, `sidecar configuration valid (service ${sidecar.service})`);
    } else {
      const agent = resolveAgentOptions(source);
      // The etcd password is a secret: --print says it is set, not what it is.
      const shown = agent.etcdPassword === undefined ? agent : { ...agent, etcdPassword: '(set)' };
      print(shown, `configuration valid (${agent.services.length} services)`);
    }
    return 0;
  },
};
