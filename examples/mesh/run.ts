/**
 * @module Starts the example mesh: an agent (in memory) on 127.0.0.1:8500 (`--http` to change),
 * two payments instances, one orders and one users, all registering themselves and calling each
 * other by name. Ctrl-C stops them gracefully. Run: `npm run example:mesh`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { http: { type: 'string', default: '127.0.0.1:8500' } } });
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));
const children: ChildProcess[] = [];

/** Spawns a process and resolves with the URL it prints in its `listening on <url>` line. */
function start(name: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(`[${name}] ${d.toString()}`);
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before listening`)));
  });
}

const registry = await start('agent', [
  here('../../bin/meshwork.js'),
  'agent',
  '--dev',
  '--http',
  values.http,
]);
const env = { MESHWORK_REGISTRY: registry };
const service = (file: string): string[] => ['--import', 'tsx', here(file)];
await Promise.all([
  start('payments-a', service('./payments.ts'), env),
  start('payments-b', service('./payments.ts'), env),
  start('orders', service('./orders.ts'), env),
]);
const users = await start('users', service('./users.ts'), env);
console.log(`
The mesh is up. Try:
  curl -s -X POST ${users}/checkout -d '{"user":"ada","item":"book","amount":12}'
  curl -s ${registry}/api/v1/services
Ctrl-C stops everything (each service deregisters, drains and exits).`);

const stop = (): void => {
  for (const c of children.slice(1)) c.kill('SIGTERM');
  void Promise.all(children.slice(1).map((c) => new Promise((r) => c.once('exit', r)))).then(() =>
    children[0]?.kill('SIGTERM'),
  );
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
