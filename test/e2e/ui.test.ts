/**
 * The dashboard (issue 21) in a real browser: Debian's chromium driven by playwright-core,
 * against a real agent process (bin/meshwork.js, built by `npm run build` with the UI). Each
 * page's screenshot is written to test/.artifacts/ui/ (git-ignored).
 *
 * @solo: one test bounds how fast a status change reaches the page (1 s); beside another
 * CPU-heavy file on a 2-core machine it would measure the neighbour.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { spawnAgent, type AgentProcess } from '../helpers/cli.js';

const ARTIFACTS = fileURLToPath(new URL('../.artifacts/ui/', import.meta.url));
/** Playwright's waits: generous, for a loaded 2-core CI machine. */
const WAIT_MS = 15_000;

let browser: Browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    // As root (CI containers) chromium refuses to start with its sandbox.
    args: ['--no-sandbox'],
  });
  console.log(`ui screenshots: ${ARTIFACTS}`);
});

after(async () => {
  await browser?.close();
});

/** Calls the agent's API as curl would (no Origin), answering status and JSON body. */
async function api(
  agent: AgentProcess,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${agent.url}${path}`, {
    method,
    headers: {
      ...(body === undefined || typeof body === 'string'
        ? {}
        : { 'content-type': 'application/json' }),
      ...(token === undefined ? {} : { 'x-consul-token': token }),
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}

function useAgent(args: readonly string[]): () => AgentProcess {
  let agent: AgentProcess | undefined;
  before(async () => {
    agent = await spawnAgent(['--dev', '--dns', 'off', ...args]);
  });
  after(async () => {
    agent?.child.kill('SIGTERM');
    await agent?.exited;
  });
  return () => {
    assert.ok(agent, 'the agent has started');
    return agent;
  };
}

describe('dashboard', () => {
  const agent = useAgent([]);
  let page: Page;
  before(async () => {
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  });
  after(async () => {
    await page.close();
  });

  it('redirects / to /ui/ and shows a service registered while it is open', async () => {
    await page.goto(`${agent().url}/`);
    assert.equal(new URL(page.url()).pathname, '/ui/');
    await page.getByText('No services registered.').waitFor({ timeout: WAIT_MS });
    const r = await api(agent(), 'PUT', '/api/v1/instances', {
      service: 'orders',
      id: 'orders-1',
      address: '10.0.0.1',
      port: 8080,
      tags: ['v1'],
      meta: { version: '1.0.0' },
      checks: [{ ttl: '30s' }],
    });
    assert.equal(r.status, 200);
    const row = page.locator('tr[data-service="orders"]');
    await row.waitFor({ timeout: WAIT_MS });
    assert.equal(await row.locator('td').nth(1).textContent(), '1');
    await screenshot(page, 'services');
  });

  it('turns an instance red within a second of it turning critical', async () => {
    // A TTL check is critical until its first heartbeat.
    const pass = await api(agent(), 'PUT', '/api/v1/instances/orders-1/heartbeat', {});
    assert.equal(pass.body.status, 'passing');
    await page.goto(`${agent().url}/ui/#/services/orders`);
    const card = page.locator('[data-instance="orders-1"]');
    await page
      .locator('[data-instance="orders-1"][data-status="passing"]')
      .waitFor({ timeout: WAIT_MS });
    // Measured on one clock, the machine's wall clock (Date.now() in both processes): the
    // test notes the time just before it sends the heartbeat that makes the instance critical,
    // and a MutationObserver in the page notes the time the card's data-status became
    // `critical`. The difference is the whole path: request, commit, stream, render.
    // (Page scripts are strings: this file is type-checked without the DOM's types.)
    await page.evaluate(`(() => {
      const card = () => document.querySelector('[data-instance="orders-1"]');
      new MutationObserver(() => {
        if (window.redAt === undefined && card()?.getAttribute('data-status') === 'critical')
          window.redAt = Date.now();
      }).observe(document.body, { subtree: true, attributes: true, childList: true });
    })()`);
    const sentAt = Date.now();
    const r = await api(agent(), 'PUT', '/api/v1/instances/orders-1/heartbeat', {
      status: 'critical',
      output: 'database unreachable',
    });
    assert.equal(r.status, 200);
    await page
      .locator('[data-instance="orders-1"][data-status="critical"]')
      .waitFor({ timeout: WAIT_MS });
    const redAt = await page.evaluate<number | undefined>('window.redAt');
    assert.ok(redAt !== undefined, 'the observer saw the change');
    const ms = redAt - sentAt;
    console.log(`critical -> red in ${ms} ms`);
    assert.ok(ms <= 1000, `red ${ms} ms after the change (at most 1000)`);
    // The card is red (its status colour), and the check's output shows.
    const color = await page.evaluate<string>(
      `getComputedStyle(document.querySelector('[data-instance="orders-1"] .badge')).backgroundColor`,
    );
    assert.equal(color, 'rgb(209, 36, 47)');
    await card
      .locator('tr[data-check] code', { hasText: 'database unreachable' })
      .waitFor({ timeout: WAIT_MS });
    await screenshot(page, 'service');
  });
});
