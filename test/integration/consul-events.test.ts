/**
 * /v1/event (issue 22) against a real in-process agent: the npm `consul` package's event.fire,
 * event.list and a watch on event.list, and raw requests for the blocking index rules.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Consul from 'consul';
import { request } from 'undici';
import { eventIdToIndex } from '../../src/registry-api/consul/consul-events.js';
import { startTestAgent, type TestAgent } from '../helpers/agent.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the client answers arbitrary JSON
type Any = any;

describe('Consul /v1/event', () => {
  let agent: TestAgent;
  let consul: Consul;
  const get = async (path: string) => {
    const res = await request(`${agent.url}${path}`);
    const text = await res.body.text();
    return {
      status: res.statusCode,
      index: res.headers['x-consul-index'] as string,
      text,
      json: () => JSON.parse(text) as Any,
    };
  };

  before(async () => {
    agent = await startTestAgent();
    const { hostname, port } = new URL(agent.url);
    consul = new Consul({ host: hostname, port: Number(port) });
    await consul.agent.service.register({ name: 'ev-web', tags: ['blue'], port: 1 } as Any);
  });
  after(() => agent.stop());

  it('fires and lists events with their payload, newest last, the index derived from the ID', async () => {
    const empty = await get('/v1/event/list?name=deploy');
    assert.equal(empty.index, '1');
    assert.deepEqual(empty.json(), []);

    const fired: Any = await consul.event.fire('deploy', 'v1.2.3');
    assert.equal(fired.Name, 'deploy');
    assert.equal(fired.Payload, 'v1.2.3');
    assert.equal(fired.Version, 1);
    assert.match(fired.ID, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await consul.event.fire({ name: 'other', payload: '' } as Any);
    const second: Any = await consul.event.fire('deploy', 'v1.2.4');

    const list: Any[] = await consul.event.list({ name: 'deploy' } as Any);
    assert.deepEqual(
      list.map((e) => e.Payload),
      ['v1.2.3', 'v1.2.4'],
    );
    const raw = await get('/v1/event/list?name=deploy');
    assert.equal(raw.index, String(eventIdToIndex(second.ID)));
    assert.equal(raw.json()[1].Payload, Buffer.from('v1.2.4').toString('base64'));
    assert.equal((await get('/v1/event/list')).json().length, 3);
  });

  it('applies node, service and tag filters as the agent that lists them', async () => {
    await consul.event.fire({ name: 'filtered', node: '^nomatch$' } as Any);
    await consul.event.fire({
      name: 'filtered',
      node: 'test-.*',
      service: 'ev-web',
      tag: 'bl',
    } as Any);
    await consul.event.fire({ name: 'filtered', service: 'ev-web', tag: '^green$' } as Any);
    const list = (await get('/v1/event/list?name=filtered')).json();
    assert.equal(list.length, 1);
    assert.equal(list[0].TagFilter, 'bl');
    const bad = await request(`${agent.url}/v1/event/fire/x?tag=a`, { method: 'PUT' });
    assert.equal(bad.statusCode, 400);
    assert.equal(await bad.body.text(), 'Cannot provide tag filter without service filter');
    const big = await request(`${agent.url}/v1/event/fire/x`, {
      method: 'PUT',
      body: 'x'.repeat(600),
    });
    assert.equal(big.statusCode, 400);
    assert.match(await big.body.text(), /exceeds configured limit of 512 bytes/);
  });

  it('blocks a list while its index holds and answers when an event is fired', async () => {
    const before = await get('/v1/event/list?name=block');
    const waiting = get(`/v1/event/list?name=block&index=${before.index}&wait=10s`);
    let answered = false;
    void waiting.then(() => (answered = true));
    await new Promise((r) => setImmediate(r));
    await consul.event.fire('other-name', 'does not wake it');
    await new Promise((r) => setImmediate(r));
    assert.equal(answered, false);
    const fired: Any = await consul.event.fire('block', 'wake');
    const after = await waiting;
    assert.equal(after.json().length, 1);
    assert.equal(after.index, String(eventIdToIndex(fired.ID)));
    // An index that is not the current one answers at once (Consul compares for equality).
    const stale = await get('/v1/event/list?name=block&index=99999999&wait=10s');
    assert.equal(stale.json().length, 1);
  });

  it('feeds the npm client watch on event.list, one change per fire', async () => {
    const watch = consul.watch({
      method: consul.event.list,
      options: { name: 'watched', wait: '5s' } as Any,
    });
    const seen: number[] = [];
    const changes: Promise<void> = new Promise((resolve, reject) => {
      watch.on('change', (data: Any[]) => {
        seen.push(data.length);
        if (seen.length === 1) void consul.event.fire('watched', '1');
        else if (seen.length === 2) void consul.event.fire('watched', '2');
        else resolve();
      });
      watch.on('error', reject);
    });
    await changes;
    watch.end();
    assert.deepEqual(seen, [0, 1, 2]);
  });

  it('keeps the last 256 events', async () => {
    for (let i = 0; i < 260; i++)
      await consul.event.fire({ name: 'many', payload: String(i) } as Any);
    const all = (await get('/v1/event/list')).json();
    assert.equal(all.length, 256);
    assert.equal(Buffer.from(all.at(-1).Payload, 'base64').toString(), '259');
  });
});
