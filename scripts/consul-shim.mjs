#!/usr/bin/env node
// Stands in for the `consul` binary so a Consul client's own acceptance suite can run against
// Meshwork (docs/consul-compatibility.md, "node-consul's acceptance suite"). It maps
// `consul agent -node N -datacenter DC -client ADDR ...` to a Meshwork agent on ADDR:8500 with an
// in-memory store, in this very process: the suite ends agents with SIGKILL, which a wrapper
// process would survive. Usage: CONSUL_BIN=scripts/consul-shim.mjs (after `npm run build`).
import { main } from '../dist/cli/main.js';

const args = process.argv.slice(2);
if (args[0] !== 'agent') {
  process.stderr.write('consul-shim: only "agent" is supported\n');
  process.exit(2);
}
const flag = (name) => {
  const i = args.indexOf(`-${name}`);
  return i < 0 ? undefined : args[i + 1];
};
const client = flag('client') ?? '127.0.0.1';
// DNS on the client address too, as Consul does: three agents cannot share 127.0.0.1:8600.
const argv = ['agent', '--dev', '--http', `${client}:8500`, '--dns', `${client}:8600`];
argv.push('--log-level', 'warn');
if (flag('node') !== undefined) argv.push('--node-name', flag('node'));
if (flag('datacenter') !== undefined) argv.push('--datacenter', flag('datacenter'));
process.exitCode = await main(argv);
