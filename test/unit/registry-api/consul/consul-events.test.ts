/** Unit tests of Consul user events: validation, and the ID an index is derived from (issue 22). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ERROR_CODES, isMeshError } from '../../../../src/core/errors.js';
import {
  eventIdFor,
  eventIdToIndex,
  validateUserEvent,
  type UserEventRequest,
} from '../../../../src/registry-api/consul/consul-events.js';

const ok = (e: Partial<UserEventRequest>): UserEventRequest => ({
  name: 'deploy',
  payload: new Uint8Array(0),
  nodeFilter: '',
  serviceFilter: '',
  tagFilter: '',
  ...e,
});

const refusal = (e: UserEventRequest): string | undefined => {
  try {
    validateUserEvent(e);
    return undefined;
  } catch (err) {
    assert.ok(isMeshError(err, ERROR_CODES.CONSUL_REQUEST));
    assert.equal(err.details?.status, 400);
    return err.message;
  }
};

describe('eventIdFor', () => {
  it('makes UUID-shaped IDs whose Consul index (uuidToUint64) is the given index', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (index) => {
        const id = eventIdFor(index);
        return (
          /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) &&
          eventIdToIndex(id) === BigInt(index)
        );
      }),
    );
  });

  it("derives Consul's index from a known ID (the halves XORed)", () => {
    assert.equal(eventIdToIndex('00000000-0000-0001-0000-000000000003'), BigInt(1) ^ BigInt(3));
  });
});

describe('validateUserEvent', () => {
  it("refuses what Consul's validateUserEventParams refuses, with its messages", () => {
    assert.equal(refusal(ok({ name: '' })), 'Missing name');
    assert.equal(
      refusal(ok({ tagFilter: 'x' })),
      'Cannot provide tag filter without service filter',
    );
    assert.match(refusal(ok({ nodeFilter: '(' })) ?? '', /^Invalid node filter: /);
    assert.match(
      refusal(ok({ payload: new Uint8Array(500) })) ?? '',
      /exceeds configured limit of 512 bytes/,
    );
    assert.equal(
      refusal(ok({ serviceFilter: 'web', tagFilter: 'v1', payload: new Uint8Array(100) })),
      undefined,
    );
  });

  it('accepts or refuses any input with a 400, never a crash', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.uint8Array({ maxLength: 600 }),
        fc.string(),
        fc.string(),
        fc.string(),
        (name, payload, nodeFilter, serviceFilter, tagFilter) => {
          const m = refusal({ name, payload, nodeFilter, serviceFilter, tagFilter });
          if (name === '') return m === 'Missing name';
          if (payload.length > 512) return m !== undefined;
          return true;
        },
      ),
    );
  });
});
