/**
 * The real npm eureka-js-client (4.5) against the agent (issue 23): register, heartbeats, full
 * and delta fetches, a status override seen by its next fetch, deregistration on stop; once
 * with its default servicePath (/eureka/v2/apps/) and once with Spring Cloud's (/eureka/apps/).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { http, useTestAgent } from '../helpers/agent.js';
import { until } from '../helpers/until.js';

/** What these tests use of eureka-js-client (it ships no types). */
interface EurekaClientInstance {
  readonly app: string;
  readonly instanceId?: string;
  readonly hostName: string;
  readonly status: string;
  readonly port: { readonly $: number };
}
interface EurekaClient extends NodeJS.EventEmitter {
  start(cb: (err?: Error | null) => void): void;
  stop(cb: (err?: Error | null) => void): void;
  getInstancesByAppId(app: string): EurekaClientInstance[];
  getInstancesByVipAddress(vip: string): EurekaClientInstance[];
  hasFullRegistry: boolean;
}
type EurekaCtor = new (config: Record<string, unknown>) => EurekaClient;

const require = createRequire(import.meta.url);
const { Eureka } = require('eureka-js-client') as { Eureka: EurekaCtor };

const quiet = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

function client(port: number, servicePath: string, app: string, appPort: number): EurekaClient {
  return new Eureka({
    logger: quiet,
    shouldUseDelta: true,
    instance: {
      app,
      hostName: 'localhost',
      ipAddr: '127.0.0.1',
      statusPageUrl: `http://localhost:${appPort}/info`,
      port: { $: appPort, '@enabled': true },
      vipAddress: app.toLowerCase(),
      dataCenterInfo: {
        '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
        name: 'MyOwn',
      },
    },
    eureka: {
      host: '127.0.0.1',
      port,
      servicePath,
      heartbeatInterval: 100,
      registryFetchInterval: 100,
      maxRetries: 0,
    },
  });
}

const start = (c: EurekaClient): Promise<void> =>
  new Promise((resolve, reject) => c.start((err) => (err ? reject(err) : resolve())));
const stop = (c: EurekaClient): Promise<void> =>
  new Promise((resolve, reject) => c.stop((err) => (err ? reject(err) : resolve())));

for (const [label, servicePath, prefix] of [
  ['default paths', '/eureka/v2/apps/', '/eureka/v2'],
  ['Spring Cloud paths', '/eureka/apps/', '/eureka'],
] as const) {
  describe(`eureka-js-client 4.5 (${label})`, () => {
    const agent = useTestAgent();

    it('registers, heartbeats, fetches registry and delta, sees a status change, deregisters', async () => {
      const port = Number(new URL(agent().url).port);
      const orders = client(port, servicePath, 'ORDERS', 8080);
      const users = client(port, servicePath, 'USERS', 8081);
      await start(orders);
      try {
        assert.ok(orders.hasFullRegistry);
        const mine = orders.getInstancesByAppId('ORDERS');
        assert.equal(mine.length, 1);
        assert.equal(mine[0]?.hostName, 'localhost');
        // Its instance id is its hostName: the catalog id is prefixed with the service.
        const health = await http(agent().url, 'GET', '/v1/health/service/orders?passing');
        assert.equal(health.body.length, 1);
        assert.equal(health.body[0].Service.ID, 'orders:localhost');
        await once(orders, 'heartbeat');
        await once(orders, 'heartbeat');

        // A new app reaches the first client by delta (it has its full registry already).
        await start(users);
        await until(() => orders.getInstancesByAppId('USERS').length === 1, 5000, 'USERS by delta');

        // An override through the API, seen by the next delta fetch.
        const out = await http(
          agent().url,
          'PUT',
          `${prefix}/apps/USERS/localhost/status?value=OUT_OF_SERVICE`,
        );
        assert.equal(out.status, 200, out.text);
        await until(
          () => orders.getInstancesByAppId('USERS')[0]?.status === 'OUT_OF_SERVICE',
          5000,
          'USERS out of service in the client',
        );
        const delta = await http(agent().url, 'GET', `${prefix}/apps/delta`, undefined, {
          accept: 'application/json',
        });
        assert.equal(delta.status, 200, delta.text);
        assert.equal(delta.body.applications.apps__hashcode, 'OUT_OF_SERVICE_1_UP_1_');

        await stop(users);
        const gone = await http(agent().url, 'GET', '/v1/health/service/users');
        assert.deepEqual(gone.body, []);
        await until(
          () => orders.getInstancesByAppId('USERS').length === 0,
          5000,
          'USERS gone from the client',
        );
      } finally {
        await stop(orders);
      }
      const left = await http(agent().url, 'GET', '/v1/health/service/orders');
      assert.deepEqual(left.body, []);
    });
  });
}
