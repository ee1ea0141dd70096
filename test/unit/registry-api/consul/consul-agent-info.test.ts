/** The agent-info helpers: os-release parsing (fast-check), the Prometheus choice, HumanVersion. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  consulHumanVersion,
  wantsPrometheus,
} from '../../../../src/registry-api/consul/consul-agent-info-routes.js';
import { parseOsRelease } from '../../../../src/registry-api/consul/consul-host-info.js';

const key = fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,11}$/);
const plain = fc.stringMatching(/^[a-zA-Z0-9 ._-]{0,16}$/).map((v) => v.trim());

describe('parseOsRelease', () => {
  it('reads every KEY=value line, quoted or not, and skips comments and blanks', () => {
    fc.assert(
      fc.property(fc.dictionary(key, fc.tuple(plain, fc.constantFrom('', '"', "'"))), (entries) => {
        const text = [
          '# a comment',
          '',
          ...Object.entries(entries).map(([k, [v, q]]) => `${k}=${q}${v}${q}`),
        ].join('\n');
        const parsed = parseOsRelease(text);
        assert.deepEqual(
          parsed,
          Object.fromEntries(Object.entries(entries).map(([k, [v]]) => [k, v])),
        );
      }),
    );
  });

  it('reads a Debian os-release', () => {
    const debian = parseOsRelease(
      'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
    );
    assert.equal(debian.ID, 'debian');
    assert.equal(debian.VERSION_ID, '12');
    assert.equal(debian.PRETTY_NAME, 'Debian GNU/Linux 12 (bookworm)');
  });

  it('never throws, whatever the text', () => {
    fc.assert(fc.property(fc.string(), (text) => void parseOsRelease(text)));
  });
});

describe('wantsPrometheus', () => {
  it('follows ?format= when given, else a Prometheus or OpenMetrics Accept', () => {
    assert.equal(wantsPrometheus('prometheus', undefined), true);
    assert.equal(wantsPrometheus('json', 'application/openmetrics-text'), false);
    assert.equal(wantsPrometheus(undefined, undefined), false);
    assert.equal(wantsPrometheus(undefined, 'application/json'), false);
    assert.equal(
      wantsPrometheus(undefined, 'application/openmetrics-text;version=1.0.0;q=0.9,*/*;q=0.1'),
      true,
    );
    assert.equal(wantsPrometheus(undefined, 'text/plain;version=0.0.4;q=0.5'), true);
    assert.equal(wantsPrometheus(undefined, 'text/plain; version=0.0.4'), true);
    assert.equal(wantsPrometheus(undefined, 'text/plain'), false);
  });
});

describe('consulHumanVersion', () => {
  it('is semver: the Consul API level, then build metadata naming Meshwork and its version', () => {
    assert.equal(consulHumanVersion('0.1.0'), '1.17.0+meshwork.0.1.0');
    fc.assert(
      fc.property(fc.string(), (v) => {
        assert.match(consulHumanVersion(v), /^1\.17\.0\+meshwork(\.[0-9A-Za-z-]+)*$/);
      }),
    );
  });
});
