/** @module Unit tests of the commands' shared helpers: pickFlags. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pickFlags } from '../../../src/cli/command.js';
import { errors } from '../../../src/core/errors.js';

describe('pickFlags', () => {
  const values = { 'log-level': 'debug', dev: true, tag: ['a', 'b'], port: '80', json: undefined };

  it('renames the flags given and leaves out those not given', () => {
    const picked = pickFlags(values, { 'log-level': 'logLevel', dev: 'dev', json: 'json' });
    assert.deepEqual(picked, { logLevel: 'debug', dev: true });
    assert.equal(Object.hasOwn(picked, 'json'), false);
  });

  it('converts a value with its conversion, in the order the names list them', () => {
    const order: string[] = [];
    const picked = pickFlags(values, {
      port: ['port', (v) => (order.push('port'), Number(v))],
      tag: ['tags', (v) => (order.push('tag'), v.join(','))],
      json: ['json', () => assert.fail('not given, not converted')],
    });
    assert.deepEqual(picked, { port: 80, tags: 'a,b' });
    assert.deepEqual(order, ['port', 'tag']);
  });

  it('lets a conversion throw its usage error', () => {
    assert.throws(
      () =>
        pickFlags(values, {
          port: [
            'port',
            () => {
              throw errors.cliUsage('bad port');
            },
          ],
        }),
      { code: 'MESHWORK_ERR_CLI_USAGE', message: 'bad port' },
    );
  });
});
