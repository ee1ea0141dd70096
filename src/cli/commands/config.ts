/** @module `meshwork config validate`: checks flags, env and a config file without starting anything. */
import { errors } from '../../core/errors.js';
import { resolveAgentOptions } from '../../config/agent-options.js';
import { parseFlags, type Command } from '../command.js';

export const command: Command = {
  name: 'config',
  synopsis: 'Validate the agent configuration (and print the effective one)',
  help: `Usage: meshwork config validate [--config FILE] [--print]

Resolves the agent's options exactly as "meshwork agent" would (defaults < file < env), and
exits 0 when they are valid, 2 with every problem listed when not. --print shows the effective
configuration as JSON.

Examples:
  meshwork config validate --config meshwork.yaml
  MESHWORK_AGENT__HTTP=0.0.0.0:8500 meshwork config validate --print
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      config: { type: 'string' },
      print: { type: 'boolean' },
    });
    if (positionals[0] !== 'validate' || positionals.length > 1) {
      throw errors.cliUsage('the only subcommand is "validate"');
    }
    const options = resolveAgentOptions({
      ...(values.config === undefined ? {} : { file: values.config }),
      env: io.env,
    });
    if (values.print === true) io.stdout.write(`${JSON.stringify(options, null, 2)}\n`);
    else io.stdout.write(`configuration valid (${options.services.length} services)\n`);
    return 0;
  },
};
