import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { registrationInputSchema } from '../../../src/protocol/registration.js';
import {
  registrationFromLabels,
  type ContainerFacts,
  type LabelOptions,
} from '../../../src/sync/docker-labels.js';

const OPTIONS: LabelOptions = { labelPrefix: 'meshwork.', hostAddress: '10.0.0.5', nodeName: 'h1' };

const facts = (
  labels: Record<string, string>,
  over: Partial<ContainerFacts> = {},
): ContainerFacts => ({
  id: 'abcdef0123456789abcdef',
  name: 'web-1',
  labels,
  hostNetwork: true,
  ports: [],
  ...over,
});

const problemsOf = (
  labels: Record<string, string>,
  over: Partial<ContainerFacts> = {},
): string[] => {
  const r = registrationFromLabels(facts(labels, over), OPTIONS);
  assert.equal(r.kind, 'invalid', JSON.stringify(r));
  return r.kind === 'invalid' ? [...r.problems] : [];
};

describe('registrationFromLabels', () => {
  it('leaves a container without a service label alone', () => {
    assert.deepEqual(registrationFromLabels(facts({ other: 'x' }), OPTIONS), {
      kind: 'unlabelled',
    });
  });

  it('reads a host-network container: port, tags, meta, weights and an http check', () => {
    const r = registrationFromLabels(
      facts({
        'meshwork.service': 'web',
        'meshwork.port': '8080',
        'meshwork.tags': 'v1, blue,,',
        'meshwork.meta.version': '1.2.0',
        'meshwork.weights.passing': '10',
        'meshwork.weights.warning': '2',
        'meshwork.check.http': '/healthz',
        'meshwork.check.interval': '5s',
        'meshwork.check.timeout': '500ms',
      }),
      OPTIONS,
    );
    assert.equal(r.kind, 'ok');
    assert.ok(r.kind === 'ok');
    assert.deepEqual(r.registration, {
      service: 'web',
      id: 'abcdef012345',
      address: '10.0.0.5',
      port: 8080,
      source: 'orchestrator',
      tags: ['v1', 'blue'],
      meta: { version: '1.2.0', container: 'web-1', node: 'h1' },
      weights: { passing: 10, warning: 2 },
      checks: [
        { kind: 'http', http: 'http://10.0.0.5:8080/healthz', intervalMs: 5000, timeoutMs: 500 },
      ],
    });
  });

  it("takes Registrator's SERVICE_NAME and SERVICE_TAGS, and a published port", () => {
    const r = registrationFromLabels(
      facts(
        { SERVICE_NAME: 'api', SERVICE_TAGS: 'a,b', 'meshwork.check.tcp': 'true' },
        { hostNetwork: false, ports: [{ privatePort: 80, publicPort: 32768, ip: '0.0.0.0' }] },
      ),
      OPTIONS,
    );
    assert.ok(r.kind === 'ok', JSON.stringify(r));
    assert.equal(r.registration.service, 'api');
    assert.deepEqual(r.registration.tags, ['a', 'b']);
    assert.equal(r.registration.address, '10.0.0.5');
    assert.equal(r.registration.port, 32768);
    assert.deepEqual(r.registration.checks, [{ kind: 'tcp', tcp: '10.0.0.5:32768' }]);
  });

  it('picks the published port meshwork.port names, on the address it is published on', () => {
    const r = registrationFromLabels(
      facts(
        { 'meshwork.service': 'api', 'meshwork.port': '9090' },
        {
          hostNetwork: false,
          ports: [
            { privatePort: 80, publicPort: 8080 },
            { privatePort: 9090, publicPort: 9091, ip: '192.168.1.4' },
          ],
        },
      ),
      OPTIONS,
    );
    assert.ok(r.kind === 'ok', JSON.stringify(r));
    assert.equal(r.registration.address, '192.168.1.4');
    assert.equal(r.registration.port, 9091);
  });

  it('honours another label prefix', () => {
    const r = registrationFromLabels(facts({ 'sd.service': 'web', 'sd.port': '81' }), {
      ...OPTIONS,
      labelPrefix: 'sd.',
    });
    assert.ok(r.kind === 'ok', JSON.stringify(r));
    assert.equal(r.registration.port, 81);
  });

  it('names each bad label: a port that is not a number, an unknown check kind, a bad duration', () => {
    const problems = problemsOf({
      'meshwork.service': 'web',
      'meshwork.port': 'http',
      'meshwork.check.grpc': 'x',
      'meshwork.check.interval': 'soon',
      'meshwork.colour': 'blue',
    });
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.match(problems.join('\n'), /meshwork\.port: "http" is not a whole number/);
    assert.match(problems.join('\n'), /meshwork\.check\.grpc: unknown check kind/);
    assert.match(problems.join('\n'), /meshwork\.check\.interval: "soon" is not a duration/);
    assert.match(problems.join('\n'), /meshwork\.colour: unknown label/);
  });

  it('asks for a port when a host-network container gives none, or several are published', () => {
    assert.match(
      problemsOf({ 'meshwork.service': 'web' }).join(),
      /meshwork\.port: a container on the host network needs/,
    );
    const several = problemsOf(
      { 'meshwork.service': 'web' },
      {
        hostNetwork: false,
        ports: [
          { privatePort: 80, publicPort: 1 },
          { privatePort: 81, publicPort: 2 },
        ],
      },
    );
    assert.match(several.join(), /several ports are published \(80, 81\)/);
  });

  it('names the label behind a value the registration schema refuses', () => {
    assert.match(
      problemsOf({ 'meshwork.service': 'Not A Service!', 'meshwork.port': '1' }).join(),
      /^meshwork\.service: /,
    );
    assert.match(
      problemsOf({ SERVICE_NAME: 'Bad Name', 'meshwork.port': '1' }).join(),
      /^SERVICE_NAME: /,
    );
    assert.match(
      problemsOf({
        'meshwork.service': 'web',
        'meshwork.port': '1',
        'meshwork.meta.b@d': 'x',
      }).join(),
      /^meshwork\.meta\.b@d: /,
    );
  });

  it('never throws on arbitrary labels, and answers a registration the schema accepts or problems naming labels', () => {
    const key = fc.oneof(
      fc.constantFrom(
        'meshwork.service',
        'meshwork.port',
        'meshwork.tags',
        'meshwork.weight',
        'meshwork.weights.passing',
        'meshwork.check.http',
        'meshwork.check.tcp',
        'meshwork.check.ttl',
        'meshwork.check.interval',
        'meshwork.check.timeout',
        'meshwork.address',
        'SERVICE_NAME',
      ),
      fc.string().map((s) => `meshwork.${s}`),
      fc.string(),
    );
    const value = fc.oneof(
      fc.string(),
      fc.nat(70_000).map(String),
      fc.constantFrom('web', '/health', '5s'),
    );
    fc.assert(
      fc.property(
        fc.dictionary(key, value),
        fc.boolean(),
        fc.array(fc.record({ privatePort: fc.nat(65535), publicPort: fc.nat(65535) }), {
          maxLength: 3,
        }),
        (labels, hostNetwork, ports) => {
          const r = registrationFromLabels(facts(labels, { hostNetwork, ports }), OPTIONS);
          if (r.kind === 'ok') assert.ok(registrationInputSchema.safeParse(r.registration).success);
          if (r.kind === 'invalid') {
            assert.ok(r.problems.length > 0);
            for (const p of r.problems) assert.match(p, /^(meshwork\.|SERVICE_NAME)/, p);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
