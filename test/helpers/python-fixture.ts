/** @module Test helpers: runs a Python fixture with Debian's python3 and parses the JSON it prints. */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Debian's python3: its packages (python3-consul) are not seen by a pyenv/venv python3 on PATH. */
export const DEBIAN_PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * The environment of a Python client: this process's without any `CONSUL_HTTP_*` variable (the
 * clients read CONSUL_HTTP_ADDR, _TOKEN, _SSL... over their arguments, even empty ones:
 * CONSUL_HTTP_SSL="" means plain HTTP, CONSUL_HTTP_SSL_VERIFY="" no check), plus `env`.
 */
export function pythonEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONSUL_HTTP_')) out[k] = v;
  return { ...out, ...env };
}

/**
 * Runs `script args...` with Debian's python3 in pythonEnv(`env`) (e.g. a PYTHONPATH); resolves
 * with the JSON object the script prints, rejects with its stderr.
 */
export function runPythonFixture(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(
      DEBIAN_PYTHON,
      [script, ...args],
      { timeout: 60_000, env: pythonEnv(env) },
      (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as Record<string, unknown>);
      },
    );
  });
}
