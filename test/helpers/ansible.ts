/** @module Test helpers: runs an Ansible playbook against a Consul API address, results by task. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before } from 'node:test';
import { useTestAgent, type TestAgent } from './agent.js';
import { DEBIAN_PYTHON } from './python-fixture.js';

/** One task's result for localhost, as Ansible's json callback reports it. */
export interface AnsibleTaskResult {
  readonly name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- module results are loose JSON
  readonly result: Record<string, any>;
}

/**
 * Runs `ansible-playbook -i localhost, -c local <playbook>` with `consul_host` and `consul_port`
 * from `agentUrl` (plus `extraVars`), Debian's python3 as the module interpreter (python-consul
 * lives there) and the json stdout callback. Resolves with each task's result in order; rejects
 * when ansible-playbook fails to run or any task fails.
 */
export function runPlaybook(
  playbook: string,
  agentUrl: string,
  extraVars: Record<string, string> = {},
): Promise<AnsibleTaskResult[]> {
  const { hostname, port } = new URL(agentUrl);
  const vars = { consul_host: hostname, consul_port: port, ...extraVars };
  // Ansible writes its temp files under $HOME/.ansible unless told otherwise: a dir of our own.
  const home = mkdtempSync(join(tmpdir(), 'meshwork-ansible-'));
  return new Promise<AnsibleTaskResult[]>((resolve, reject) => {
    execFile(
      'ansible-playbook',
      ['-i', 'localhost,', '-c', 'local', '-e', JSON.stringify(vars), playbook],
      {
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
        env: {
          ...process.env,
          ANSIBLE_STDOUT_CALLBACK: 'json',
          ANSIBLE_PYTHON_INTERPRETER: DEBIAN_PYTHON,
          ANSIBLE_LOCAL_TEMP: join(home, 'tmp'),
          ANSIBLE_REMOTE_TEMP: join(home, 'remote-tmp'),
          ANSIBLE_NOCOLOR: '1',
          ANSIBLE_RETRY_FILES_ENABLED: '0',
          // python-consul reads these over the module's host and port when set.
          CONSUL_HTTP_ADDR: '',
          CONSUL_HTTP_TOKEN: '',
        },
      },
      (err, stdout, stderr) => {
        rmSync(home, { recursive: true, force: true });
        let report: {
          plays?: { tasks: { task: { name: string }; hosts: Record<string, object> }[] }[];
        };
        try {
          report = JSON.parse(stdout) as typeof report;
        } catch {
          reject(
            new Error(
              `ansible-playbook: ${err?.message ?? 'no JSON report'}\n${stdout}\n${stderr}`,
            ),
          );
          return;
        }
        const tasks = (report.plays ?? []).flatMap((p) =>
          p.tasks.map((t) => ({
            name: t.task.name,
            result: (t.hosts.localhost ?? {}) as AnsibleTaskResult['result'],
          })),
        );
        if (err !== null) {
          const failed = tasks.filter((t) => t.result.failed === true);
          reject(new Error(`ansible-playbook failed: ${JSON.stringify(failed)}\n${stderr}`));
          return;
        }
        resolve(tasks);
      },
    );
  });
}

/**
 * Runs `playbook` once, before the calling suite's tests, against a test agent of its own (stopped
 * after them). `agent()` is that agent, `tasks()` every task's result in order, `task(name)` one
 * task's result (asserting it ran). Call them inside tests only.
 */
export function usePlaybook(playbook: string): {
  agent: () => TestAgent;
  tasks: () => readonly AnsibleTaskResult[];
  task: (name: string) => AnsibleTaskResult['result'];
} {
  const agent = useTestAgent();
  let results: AnsibleTaskResult[] | undefined;
  before(async () => {
    results = await runPlaybook(playbook, agent().url);
  });
  const tasks = (): readonly AnsibleTaskResult[] => {
    if (results === undefined) throw new Error('the playbook has not run');
    return results;
  };
  const task = (name: string): AnsibleTaskResult['result'] => {
    const t = tasks().find((x) => x.name === name);
    assert.ok(t, `task ${name} ran`);
    return t.result;
  };
  return { agent, tasks, task };
}
