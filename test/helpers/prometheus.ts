/**
 * @module Test helpers: Debian's Prometheus (scripts/ensure-tools.sh prometheus) on a loopback
 * port, scraping given targets every second, and instant queries against its HTTP API.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { freePort } from './ports.js';
import { until } from './until.js';

/**
 * A scrape target: `host:port` (path /metrics), or with its own path and query parameters, or a
 * job's configuration as YAML lines (after `job_name`, indented 4: service discovery, relabels).
 */
export type ScrapeTarget =
  | string
  | {
      readonly target: string;
      readonly path: string;
      readonly params?: Readonly<Record<string, readonly string[]>>;
    }
  | { readonly yaml: string };

export interface PrometheusProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<unknown>;
  /** Its HTTP API base URL. */
  readonly url: string;
  /** What it wrote to stdout and stderr so far. */
  log(): string;
}

function scrapeConfig(job: string, t: ScrapeTarget): string {
  if (typeof t !== 'string' && 'yaml' in t) return `  - job_name: ${job}\n${t.yaml}\n`;
  const { target, path, params } = typeof t === 'string' ? { target: t, path: '/metrics' } : t;
  const lines = [`  - job_name: ${job}`, `    metrics_path: ${path}`];
  if (params !== undefined) {
    lines.push('    params:');
    for (const [k, vs] of Object.entries(params))
      lines.push(`      ${k}: [${vs.map((v) => `'${v}'`).join(', ')}]`);
  }
  lines.push('    static_configs:', `      - targets: ['${target}']`);
  return lines.join('\n') + '\n';
}

/** A Prometheus process on 127.0.0.1 scraping `jobs` every second, its TSDB in `dir`. */
export async function startPrometheus(
  dir: string,
  jobs: Record<string, ScrapeTarget>,
): Promise<PrometheusProcess> {
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    `global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
${Object.entries(jobs)
  .map(([job, t]) => scrapeConfig(job, t))
  .join('')}`,
  );
  const child = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited:\n${log}`);
      try {
        const res = await request(`${url}/-/ready`);
        await res.body.text();
        return res.statusCode === 200;
      } catch {
        return false;
      }
    },
    15_000,
    'prometheus ready',
  );
  return { child, exited, url, log: () => log };
}

/** The value of an instant PromQL query that answers one sample (undefined: no sample). */
export async function queryPrometheus(
  prometheus: string,
  promql: string,
): Promise<number | undefined> {
  const res = await request(`${prometheus}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await res.body.json()) as {
    status: string;
    data?: { result: { value: [number, string] }[] };
    error?: string;
  };
  assert.equal(body.status, 'success', `${promql}: ${body.error ?? ''}`);
  const first = body.data?.result[0];
  return first === undefined ? undefined : Number(first.value[1]);
}

/** One target of Prometheus's `/api/v1/targets`: the labels service discovery gave it. */
export interface DiscoveredTarget {
  readonly discoveredLabels: Readonly<Record<string, string>>;
  /** Its labels after relabelling (active targets only). */
  readonly labels?: Readonly<Record<string, string>>;
}

/** The targets of `job` that Prometheus keeps (`active`) or dropped by relabelling (`dropped`). */
export async function prometheusTargets(
  prometheus: string,
  job: string,
): Promise<{ active: DiscoveredTarget[]; dropped: DiscoveredTarget[] }> {
  const res = await request(`${prometheus}/api/v1/targets?state=any`);
  const body = (await res.body.json()) as {
    status: string;
    data: {
      activeTargets: (DiscoveredTarget & { scrapePool: string })[];
      droppedTargets: DiscoveredTarget[];
    };
  };
  assert.equal(body.status, 'success');
  return {
    active: body.data.activeTargets.filter((t) => t.scrapePool === job),
    dropped: body.data.droppedTargets.filter((t) => t.discoveredLabels.job === job),
  };
}
