/**
 * The Eureka codec (issue 23): format negotiation, registration bodies as real clients send them
 * (JSON and XML) and every refusal naming its field, hostile XML refused fast, and the rendered
 * shapes read back by a plain JSON/XML reader, as Eureka clients and Prometheus read them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import {
  bodyFormat,
  negotiateFormat,
  parseInstanceBody,
  renderApplication,
  renderApplications,
  renderInstance,
} from '../../../../src/registry-api/eureka/eureka-codec.js';
import {
  FORBIDDEN_CHARS,
  RESERVED_KEYS,
} from '../../../../src/registry-api/eureka/eureka-instance-reader.js';
import {
  DEFAULT_DATACENTER_CLASS,
  EUREKA_STATUSES,
  EurekaBodyError,
  type EurekaAction,
  type EurekaFormat,
  type EurekaInstanceInput,
  type EurekaInstanceView,
} from '../../../../src/registry-api/eureka/eureka-model.js';

/** What Eureka's Java client (Jackson codec) sends, verbatim. */
const JAVA_JSON = `{"instance":{"instanceId":"h:app:8080","app":"APP","appGroupName":null,"ipAddr":"10.0.0.1","sid":"na","homePageUrl":"http://h:8080/","statusPageUrl":"http://h:8080/actuator/info","healthCheckUrl":"http://h:8080/actuator/health","secureHealthCheckUrl":null,"vipAddress":"app","secureVipAddress":"app","countryId":1,"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"hostName":"h","status":"UP","overriddenStatus":"UNKNOWN","leaseInfo":{"renewalIntervalInSecs":30,"durationInSecs":90,"registrationTimestamp":0,"lastRenewalTimestamp":0,"evictionTimestamp":0,"serviceUpTimestamp":0},"isCoordinatingDiscoveryServer":false,"metadata":{"management.port":"8080"},"lastUpdatedTimestamp":1700000000000,"lastDirtyTimestamp":1700000000000,"actionType":null,"asgName":null,"port":{"$":8080,"@enabled":"true"},"securePort":{"$":443,"@enabled":"false"}}}`;

/** The same instance as Eureka's XStream writes it. */
const JAVA_XML = `<?xml version="1.0" encoding="UTF-8"?>
<instance>
  <instanceId>h:app:8080</instanceId>
  <hostName>h</hostName>
  <app>APP</app>
  <ipAddr>10.0.0.1</ipAddr>
  <status>UP</status>
  <overriddenstatus>UNKNOWN</overriddenstatus>
  <port enabled="true">8080</port>
  <securePort enabled="false">443</securePort>
  <countryId>1</countryId>
  <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo">
    <name>MyOwn</name>
  </dataCenterInfo>
  <leaseInfo>
    <renewalIntervalInSecs>30</renewalIntervalInSecs>
    <durationInSecs>90</durationInSecs>
    <registrationTimestamp>0</registrationTimestamp>
  </leaseInfo>
  <metadata>
    <management.port>8080</management.port>
  </metadata>
  <homePageUrl>http://h:8080/</homePageUrl>
  <statusPageUrl>http://h:8080/actuator/info</statusPageUrl>
  <healthCheckUrl>http://h:8080/actuator/health</healthCheckUrl>
  <vipAddress>app</vipAddress>
  <secureVipAddress>app</secureVipAddress>
  <isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>
  <lastUpdatedTimestamp>1700000000000</lastUpdatedTimestamp>
</instance>`;

const JAVA_INPUT: EurekaInstanceInput = {
  instanceId: 'h:app:8080',
  app: 'APP',
  appGroupName: undefined,
  hostName: 'h',
  ipAddr: '10.0.0.1',
  status: 'UP',
  overriddenStatus: 'UNKNOWN',
  port: { port: 8080, enabled: true },
  securePort: { port: 443, enabled: false },
  vipAddress: 'app',
  secureVipAddress: 'app',
  homePageUrl: 'http://h:8080/',
  statusPageUrl: 'http://h:8080/actuator/info',
  healthCheckUrl: 'http://h:8080/actuator/health',
  secureHealthCheckUrl: undefined,
  dataCenterInfo: { name: 'MyOwn', className: DEFAULT_DATACENTER_CLASS, metadata: {} },
  leaseInfo: { renewalIntervalInSecs: 30, durationInSecs: 90 },
  metadata: { 'management.port': '8080' },
};

const parse = (body: string, format: EurekaFormat): EurekaInstanceInput =>
  parseInstanceBody(Buffer.from(body), format);

/** A minimal JSON body with `instance` fields merged over the required ones. */
const json = (fields: Record<string, unknown> = {}): string =>
  JSON.stringify({
    instance: {
      app: 'svc',
      hostName: 'h',
      ipAddr: '10.0.0.1',
      dataCenterInfo: { name: 'MyOwn' },
      ...fields,
    },
  });

/** A minimal XML body with `inner` elements after the required ones. */
const xml = (inner = ''): string =>
  `<instance><app>svc</app><hostName>h</hostName><ipAddr>10.0.0.1</ipAddr><dataCenterInfo><name>MyOwn</name></dataCenterInfo>${inner}</instance>`;

/** Asserts `fn` throws a EurekaBodyError for `field` (and a reason matching `reason`). */
function refuses(fn: () => unknown, field: string, reason?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EurekaBodyError, `not a EurekaBodyError: ${String(err)}`);
    assert.equal(err.field, field, err.message);
    if (reason !== undefined) assert.match(err.reason, reason);
    return true;
  });
}

/** Runs `fn` and says how long it took, in ms. */
function timed(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

describe('negotiateFormat', () => {
  it('answers json for application/json and xml for xml types, wildcards and the rest', () => {
    assert.equal(negotiateFormat('application/json'), 'json');
    assert.equal(negotiateFormat('application/json;charset=UTF-8'), 'json');
    assert.equal(negotiateFormat('application/xml'), 'xml');
    assert.equal(negotiateFormat('text/xml'), 'xml');
    assert.equal(negotiateFormat(undefined), 'xml');
    assert.equal(negotiateFormat(''), 'xml');
    assert.equal(negotiateFormat('*/*'), 'xml');
    assert.equal(negotiateFormat('text/html'), 'xml');
    assert.equal(negotiateFormat('application/json, text/plain, */*'), 'json');
  });

  it('honours q-values, the first listed winning a tie', () => {
    assert.equal(negotiateFormat('application/xml;q=0.5, application/json'), 'json');
    assert.equal(negotiateFormat('application/json;q=0.5, application/xml;q=0.9'), 'xml');
    assert.equal(negotiateFormat('application/json; q=0.9, */*;q=0.1'), 'json');
    assert.equal(negotiateFormat('*/*, application/json;q=0.5'), 'xml');
    assert.equal(negotiateFormat('application/json;q=0'), 'xml');
    assert.equal(negotiateFormat('application/json, application/xml'), 'json');
    assert.equal(negotiateFormat('application/xml, application/json'), 'xml');
    assert.equal(negotiateFormat('APPLICATION/JSON;Q=1'), 'json');
  });
});

describe('bodyFormat', () => {
  it('reads the content type, suffixes included', () => {
    const any = Buffer.from('{}');
    assert.equal(bodyFormat('application/json', any), 'json');
    assert.equal(bodyFormat('application/json; charset=utf-8', Buffer.from('<x/>')), 'json');
    assert.equal(bodyFormat('application/vnd.eureka+json', any), 'json');
    assert.equal(bodyFormat('text/xml; charset=utf-8', any), 'xml');
    assert.equal(bodyFormat('application/vnd.eureka+xml', any), 'xml');
  });

  it('sniffs the first non-blank byte when the content type says neither', () => {
    assert.equal(bodyFormat(undefined, Buffer.from('  \n<instance/>')), 'xml');
    assert.equal(bodyFormat('text/plain', Buffer.from('\ufeff<instance/>')), 'xml');
    assert.equal(bodyFormat(undefined, Buffer.from(' {"instance":{}}')), 'json');
    assert.equal(bodyFormat(undefined, Buffer.alloc(0)), 'json');
  });
});

describe('parseInstanceBody', () => {
  it("reads Eureka's Java client body in JSON and in XML to the same input", () => {
    assert.deepEqual(parse(JAVA_JSON, 'json'), JAVA_INPUT);
    assert.deepEqual(parse(JAVA_XML, 'xml'), JAVA_INPUT);
  });

  it('reads what eureka-js-client 4.x sends (boolean @enabled, numeric port, no instanceId)', () => {
    const body = JSON.stringify({
      instance: {
        app: 'jqservice',
        hostName: 'localhost',
        ipAddr: '127.0.0.1',
        port: { $: 8080, '@enabled': true },
        vipAddress: 'jq.test.something.com',
        dataCenterInfo: { '@class': DEFAULT_DATACENTER_CLASS, name: 'MyOwn' },
        status: 'UP',
      },
    });
    const input = parse(body, 'json');
    assert.equal(input.instanceId, undefined);
    assert.equal(input.app, 'jqservice');
    assert.deepEqual(input.port, { port: 8080, enabled: true });
    assert.deepEqual(input.securePort, { port: 7002, enabled: false });
    assert.deepEqual(input.leaseInfo, { renewalIntervalInSecs: 30, durationInSecs: 90 });
    assert.equal(input.vipAddress, 'jq.test.something.com');
  });

  it('applies Eureka defaults for absent fields', () => {
    const input = parse(json(), 'json');
    assert.equal(input.status, 'UP');
    assert.equal(input.overriddenStatus, 'UNKNOWN');
    assert.deepEqual(input.port, { port: 7001, enabled: true });
    assert.deepEqual(input.securePort, { port: 7002, enabled: false });
    assert.deepEqual(input.dataCenterInfo, {
      name: 'MyOwn',
      className: DEFAULT_DATACENTER_CLASS,
      metadata: {},
    });
    assert.deepEqual(input.metadata, {});
    assert.deepEqual(parse(xml(), 'xml'), input);
  });

  it('accepts every port spelling real clients send', () => {
    const cases: [unknown, { port: number; enabled: boolean }][] = [
      [8080, { port: 8080, enabled: true }],
      ['8080', { port: 8080, enabled: true }],
      [
        { $: 8080, '@enabled': 'true' },
        { port: 8080, enabled: true },
      ],
      [
        { $: '8080', '@enabled': true },
        { port: 8080, enabled: true },
      ],
      [
        { $: 0, '@enabled': 'false' },
        { port: 0, enabled: false },
      ],
      [
        { $: 9, '@enabled': false },
        { port: 9, enabled: false },
      ],
      [{ $: 65535 }, { port: 65535, enabled: true }],
    ];
    for (const [port, expected] of cases) {
      assert.deepEqual(parse(json({ port }), 'json').port, expected, JSON.stringify(port));
    }
    assert.deepEqual(parse(json({ securePort: 443 }), 'json').securePort, {
      port: 443,
      enabled: false,
    });
    assert.deepEqual(parse(xml('<port enabled="false">0</port>'), 'xml').port, {
      port: 0,
      enabled: false,
    });
    assert.deepEqual(
      parse(xml('<securePort enabled="TRUE"> 8443 </securePort>'), 'xml').securePort,
      {
        port: 8443,
        enabled: true,
      },
    );
  });

  it('reads statuses in any case, and both spellings of overriddenStatus', () => {
    assert.equal(parse(json({ status: 'out_of_service' }), 'json').status, 'OUT_OF_SERVICE');
    assert.equal(parse(json({ overriddenstatus: 'down' }), 'json').overriddenStatus, 'DOWN');
    assert.equal(
      parse(json({ overriddenStatus: 'Starting' }), 'json').overriddenStatus,
      'STARTING',
    );
    assert.equal(parse(xml('<status>down</status>'), 'xml').status, 'DOWN');
    assert.equal(
      parse(xml('<overriddenStatus>UP</overriddenStatus>'), 'xml').overriddenStatus,
      'UP',
    );
  });

  it('reads nulls as absent, and numbers and booleans in metadata as strings', () => {
    const input = parse(
      json({
        instanceId: null,
        vipAddress: null,
        leaseInfo: null,
        port: null,
        metadata: { a: 1, b: true, c: null, d: 'x', '@class': 'java.util.Collections$EmptyMap' },
      }),
      'json',
    );
    assert.equal(input.instanceId, undefined);
    assert.equal(input.vipAddress, undefined);
    assert.deepEqual(input.port, { port: 7001, enabled: true });
    assert.deepEqual(input.metadata, { a: '1', b: 'true', d: 'x' });
  });

  it('reads lease fields as numbers or numeric strings, the rest defaulted', () => {
    assert.deepEqual(
      parse(json({ leaseInfo: { renewalIntervalInSecs: '5', durationInSecs: 15 } }), 'json')
        .leaseInfo,
      { renewalIntervalInSecs: 5, durationInSecs: 15 },
    );
    assert.deepEqual(parse(json({ leaseInfo: { durationInSecs: 86400 } }), 'json').leaseInfo, {
      renewalIntervalInSecs: 30,
      durationInSecs: 86400,
    });
    assert.deepEqual(parse(xml('<leaseInfo/>'), 'xml').leaseInfo, {
      renewalIntervalInSecs: 30,
      durationInSecs: 90,
    });
  });

  it("reads Amazon's dataCenterInfo with its metadata, and an empty metadata marker", () => {
    const body =
      '<instance><app>a</app><hostName>h</hostName><ipAddr>10.0.0.2</ipAddr>' +
      '<dataCenterInfo class="com.netflix.appinfo.AmazonInfo"><name>Amazon</name>' +
      '<metadata><instance-id>i-123</instance-id><local-ipv4>10.0.0.2</local-ipv4></metadata>' +
      '</dataCenterInfo><metadata class="java.util.Collections$EmptyMap"/></instance>';
    const input = parse(body, 'xml');
    assert.deepEqual(input.dataCenterInfo, {
      name: 'Amazon',
      className: 'com.netflix.appinfo.AmazonInfo',
      metadata: { 'instance-id': 'i-123', 'local-ipv4': '10.0.0.2' },
    });
    assert.deepEqual(input.metadata, {});
  });

  it('decodes XML references, and keeps text whitespace', () => {
    const input = parse(
      xml(
        '<metadata><q>a &amp; b &lt;c&gt; &quot;&apos; &#233;&#x1F600;</q><s> x </s><e/></metadata>',
      ),
      'xml',
    );
    assert.deepEqual(input.metadata, { q: 'a & b <c> "\' é😀', s: ' x ', e: '' });
  });

  it('refuses bodies that do not parse, naming body', () => {
    refuses(() => parse('{"instance":', 'json'), 'body', /JSON/);
    refuses(() => parse('<instance><app>a</instance>', 'xml'), 'body', /well-formed/);
    refuses(() => parse('<instance>', 'xml'), 'body');
    refuses(
      () => parseInstanceBody(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'json'),
      'body',
      /UTF-8/,
    );
    refuses(() => parseInstanceBody(Buffer.alloc(2 * 1024 * 1024, 0x20), 'json'), 'body', /larger/);
  });

  it('refuses a body without the instance wrapper, naming instance', () => {
    refuses(() => parse('{"app":"a"}', 'json'), 'instance');
    refuses(() => parse('[]', 'json'), 'instance');
    refuses(() => parse('null', 'json'), 'instance');
    refuses(() => parse('{"instance":"x"}', 'json'), 'instance');
    refuses(() => parse('<app>a</app>', 'xml'), 'instance');
    refuses(() => parse(`${xml()}<instance/>`, 'xml'), 'instance');
  });

  it('refuses missing required fields, naming each', () => {
    for (const field of ['app', 'hostName', 'ipAddr']) {
      refuses(() => parse(json({ [field]: undefined }), 'json'), `instance.${field}`, /required/);
      refuses(() => parse(json({ [field]: '  ' }), 'json'), `instance.${field}`, /required/);
    }
    refuses(() => parse(json({ dataCenterInfo: undefined }), 'json'), 'instance.dataCenterInfo');
    refuses(() => parse(json({ dataCenterInfo: {} }), 'json'), 'instance.dataCenterInfo.name');
    refuses(
      () =>
        parse('<instance><app>a</app><hostName>h</hostName><ipAddr>i</ipAddr></instance>', 'xml'),
      'instance.dataCenterInfo',
    );
  });

  it('refuses bad values, naming the field and the reason', () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ status: 'HAPPY' }, 'instance.status', /unknown status/],
      [{ overriddenstatus: 'x' }, 'instance.overriddenstatus', /unknown status/],
      [{ status: 1 }, 'instance.status', /string/],
      [{ app: 5 }, 'instance.app', /string/],
      [{ port: { $: 0, '@enabled': 'true' } }, 'instance.port.$', /between 1 and 65535/],
      [{ port: 70000 }, 'instance.port', /between/],
      [{ port: '80a' }, 'instance.port', /whole number/],
      [{ port: 80.5 }, 'instance.port', /whole number/],
      [{ port: { '@enabled': 'true' } }, 'instance.port.$', /required/],
      [{ port: { $: 80, '@enabled': 'yes' } }, 'instance.port.@enabled', /true or false/],
      [{ securePort: { $: -1, '@enabled': false } }, 'instance.securePort.$', /between/],
      [{ leaseInfo: { durationInSecs: 0 } }, 'instance.leaseInfo.durationInSecs', /between/],
      [{ leaseInfo: { durationInSecs: 86401 } }, 'instance.leaseInfo.durationInSecs', /between/],
      [
        { leaseInfo: { renewalIntervalInSecs: 1.5 } },
        'instance.leaseInfo.renewalIntervalInSecs',
        /whole/,
      ],
      [{ leaseInfo: 30 }, 'instance.leaseInfo', /object/],
      [{ hostName: 'h'.repeat(254) }, 'instance.hostName', /253/],
      [{ vipAddress: 'v'.repeat(513) }, 'instance.vipAddress', /512/],
      [{ app: 'a\u0000b' }, 'instance.app', /control/],
      [{ homePageUrl: 'http://x/\n' }, 'instance.homePageUrl', /control/],
      [{ ipAddr: '\ud800' }, 'instance.ipAddr', /control/],
      [{ metadata: { k: { nested: 1 } } }, 'instance.metadata.k', /string/],
      [{ metadata: { k: 'v'.repeat(513) } }, 'instance.metadata.k', /512/],
      [{ metadata: { '': 'v' } }, 'instance.metadata.', /empty/],
      [{ metadata: { constructor: 'v' } }, 'instance.metadata.constructor', /reserved/],
      [{ metadata: [] }, 'instance.metadata', /object/],
      [{ dataCenterInfo: 'MyOwn' }, 'instance.dataCenterInfo', /object/],
      [
        { dataCenterInfo: { name: 'Amazon', metadata: { 'instance-id': 'i-1', x: [] } } },
        'instance.dataCenterInfo.metadata.x',
        /string/,
      ],
    ];
    for (const [fields, field, reason] of cases)
      refuses(() => parse(json(fields), 'json'), field, reason);
    refuses(
      () => parse(json().replace('"MyOwn"}', '"MyOwn"},"metadata":{"__proto__":"v"}'), 'json'),
      'instance.metadata.__proto__',
      /reserved/,
    );
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    refuses(() => parse(json({ metadata: many }), 'json'), 'instance.metadata', /64/);
  });

  it('refuses bad XML values, naming the same fields', () => {
    const cases: [string, string, RegExp][] = [
      ['<status>HAPPY</status>', 'instance.status', /unknown/],
      ['<port enabled="true">0</port>', 'instance.port.$', /between/],
      ['<port enabled="maybe">80</port>', 'instance.port.@enabled', /true or false/],
      [
        '<leaseInfo><durationInSecs>x</durationInSecs></leaseInfo>',
        'instance.leaseInfo.durationInSecs',
        /whole/,
      ],
      ['<metadata><k><n>1</n></k></metadata>', 'instance.metadata.k', /string/],
      ['<metadata><k>1</k><k>2</k></metadata>', 'instance.metadata.k', /once/],
      ['<status>UP</status><status>UP</status>', 'instance.status', /once/],
      ['<metadata>text<k>1</k></metadata>', 'instance.metadata', /mixed/],
      ['<metadata><k>&#1114112;</k></metadata>', 'instance.metadata.k', /reference/],
      ['<metadata><k>&#0;</k></metadata>', 'instance.metadata.k', /control/],
      ['<metadata><toString>1</toString></metadata>', 'instance.metadata.toString', /reserved/],
    ];
    for (const [inner, field, reason] of cases)
      refuses(() => parse(xml(inner), 'xml'), field, reason);
  });
});

describe('parseInstanceBody on hostile XML', () => {
  const lol =
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
    Array.from(
      { length: 9 },
      (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`,
    ).join('') +
    ']><instance><app>&lol9;</app></instance>';
  const hostile: [string, string][] = [
    ['billion laughs', lol],
    [
      'an external entity',
      '<?xml version="1.0"?><!DOCTYPE i [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><instance><app>&xxe;</app></instance>',
    ],
    [
      'parameter entities',
      '<!DOCTYPE i [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><instance/>',
    ],
    ['a bare DOCTYPE', '<!DOCTYPE instance><instance/>'],
    ['a CDATA section', '<instance><app><![CDATA[x]]></app></instance>'],
  ];
  for (const [name, body] of hostile) {
    it(`refuses ${name} before parsing, naming body`, () => {
      const ms = timed(() => refuses(() => parse(body, 'xml'), 'body', /DOCTYPE/));
      assert.ok(ms < 50, `${ms} ms`);
    });
  }

  it('refuses 10,000-deep nesting quickly', () => {
    const deep = `<instance>${'<a>'.repeat(10_000)}${'</a>'.repeat(10_000)}</instance>`;
    const ms = timed(() => refuses(() => parse(deep, 'xml'), 'body', /nested/i));
    assert.ok(ms < 200, `${ms} ms`);
  });

  it('never resolves an undeclared entity', () => {
    refuses(
      () => parse(xml('<vipAddress>&xxe;</vipAddress>'), 'xml'),
      'instance.vipAddress',
      /reference/,
    );
  });
});

// --- properties ---

/** Strings a registration may carry: no controls, no lone surrogates, any other code point. */
const text = (min: number, max: number): fc.Arbitrary<string> =>
  fc
    .string({ unit: 'binary', minLength: min, maxLength: max })
    .filter((s) => !FORBIDDEN_CHARS.test(s));
const nonBlank = (max: number): fc.Arbitrary<string> => text(1, max).filter((s) => s.trim() !== '');
const xmlName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9._-]{0,20}$/);

const stringMapArb = fc.dictionary(
  xmlName.filter((k) => !RESERVED_KEYS.has(k) && !k.startsWith('__')),
  text(0, 30),
  { maxKeys: 5, noNullPrototype: true },
);
/** fast-check may make null-prototype records; the codec makes plain objects. */
const plain = { noNullPrototype: true } as const;
const status = fc.constantFrom(...EUREKA_STATUSES);
const portArb = fc.oneof(
  fc.record({ port: fc.integer({ min: 1, max: 65_535 }), enabled: fc.constant(true) }, plain),
  fc.record({ port: fc.integer({ min: 0, max: 65_535 }), enabled: fc.constant(false) }, plain),
);
const optional = (a: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> =>
  fc.option(a, { nil: undefined });
const seconds = fc.integer({ min: 1, max: 86_400 });

const inputArb: fc.Arbitrary<EurekaInstanceInput> = fc.record(
  {
    instanceId: nonBlank(40),
    app: nonBlank(20).map((s) => s.toUpperCase()),
    appGroupName: optional(text(0, 20)),
    hostName: nonBlank(40),
    ipAddr: nonBlank(20),
    status,
    overriddenStatus: status,
    port: portArb,
    securePort: portArb,
    vipAddress: optional(text(0, 20)),
    secureVipAddress: optional(text(0, 20)),
    homePageUrl: optional(text(0, 40)),
    statusPageUrl: optional(text(0, 40)),
    healthCheckUrl: optional(text(0, 40)),
    secureHealthCheckUrl: optional(text(0, 40)),
    dataCenterInfo: fc.record(
      {
        name: nonBlank(10),
        className: nonBlank(40),
        metadata: stringMapArb,
      },
      plain,
    ),
    leaseInfo: fc.record({ renewalIntervalInSecs: seconds, durationInSecs: seconds }, plain),
    metadata: stringMapArb,
  },
  plain,
);

const ms = fc.integer({ min: 0, max: 4_102_444_800_000 });
const viewArb: fc.Arbitrary<EurekaInstanceView> = fc
  .tuple(
    inputArb,
    ms,
    ms,
    ms,
    ms,
    ms,
    ms,
    fc.constantFrom<EurekaAction>('ADDED', 'MODIFIED', 'DELETED'),
  )
  .map(([input, a, b, c, d, e, f, actionType]) => ({
    ...input,
    instanceId: input.instanceId ?? input.hostName,
    leaseInfo: {
      ...input.leaseInfo,
      registrationTimestamp: a,
      lastRenewalTimestamp: b,
      evictionTimestamp: c,
      serviceUpTimestamp: d,
    },
    lastUpdatedTimestamp: e,
    lastDirtyTimestamp: f,
    actionType,
  }));

/** The input a view was made from: what parsing its rendering must give back. */
const inputOf = (v: EurekaInstanceView): EurekaInstanceInput => ({
  instanceId: v.instanceId,
  app: v.app,
  appGroupName: v.appGroupName,
  hostName: v.hostName,
  ipAddr: v.ipAddr,
  status: v.status,
  overriddenStatus: v.overriddenStatus,
  port: v.port,
  securePort: v.securePort,
  vipAddress: v.vipAddress,
  secureVipAddress: v.secureVipAddress,
  homePageUrl: v.homePageUrl,
  statusPageUrl: v.statusPageUrl,
  healthCheckUrl: v.healthCheckUrl,
  secureHealthCheckUrl: v.secureHealthCheckUrl,
  dataCenterInfo: v.dataCenterInfo,
  leaseInfo: {
    renewalIntervalInSecs: v.leaseInfo.renewalIntervalInSecs,
    durationInSecs: v.leaseInfo.durationInSecs,
  },
  metadata: v.metadata,
});

/** A standard XML reader, as a client would configure one (entities on: it trusts us). */
const reader = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  textNodeName: '$',
  parseTagValue: false,
  trimValues: false,
  htmlEntities: true,
  isArray: (name) => name === 'application' || name === 'instance',
});

/** The fields every reader checks, as strings, from a parsed JSON or XML instance. */
function fieldsOf(i: Record<string, unknown>): Record<string, unknown> {
  const port = i['port'] as Record<string, unknown>;
  const securePort = i['securePort'] as Record<string, unknown>;
  const dc = i['dataCenterInfo'] as Record<string, unknown>;
  const lease = i['leaseInfo'] as Record<string, unknown>;
  const meta = { ...(i['metadata'] as Record<string, unknown>) };
  delete meta['@class'];
  const dcMeta = { ...((dc['metadata'] ?? {}) as Record<string, unknown>) };
  const str = (v: unknown): string | undefined => (v === undefined ? undefined : String(v));
  return {
    instanceId: i['instanceId'],
    hostName: i['hostName'],
    app: i['app'],
    appGroupName: i['appGroupName'],
    ipAddr: i['ipAddr'],
    status: i['status'],
    overriddenstatus: i['overriddenstatus'],
    port: [str(port['$']), str(port['@enabled'])],
    securePort: [str(securePort['$']), str(securePort['@enabled'])],
    countryId: str(i['countryId']),
    dc: [
      dc['@class'],
      dc['name'],
      Object.fromEntries(Object.entries(dcMeta).map(([k, v]) => [k, str(v)])),
    ],
    lease: Object.fromEntries(Object.entries(lease).map(([k, v]) => [k, str(v)])),
    metadata: Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, str(v)])),
    urls: [i['homePageUrl'], i['statusPageUrl'], i['healthCheckUrl'], i['secureHealthCheckUrl']],
    vips: [i['vipAddress'], i['secureVipAddress']],
    coordinating: str(i['isCoordinatingDiscoveryServer']),
    timestamps: [str(i['lastUpdatedTimestamp']), str(i['lastDirtyTimestamp'])],
    actionType: i['actionType'],
  };
}

/** The same fields straight from the view. */
function expectedFields(v: EurekaInstanceView): Record<string, unknown> {
  const asStrings = (r: Readonly<Record<string, string | number>>): Record<string, string> =>
    Object.fromEntries(Object.entries(r).map(([k, x]) => [k, String(x)]));
  return {
    instanceId: v.instanceId,
    hostName: v.hostName,
    app: v.app,
    appGroupName: v.appGroupName,
    ipAddr: v.ipAddr,
    status: v.status,
    overriddenstatus: v.overriddenStatus,
    port: [String(v.port.port), String(v.port.enabled)],
    securePort: [String(v.securePort.port), String(v.securePort.enabled)],
    countryId: '1',
    dc: [v.dataCenterInfo.className, v.dataCenterInfo.name, { ...v.dataCenterInfo.metadata }],
    lease: asStrings({ ...v.leaseInfo }),
    metadata: { ...v.metadata },
    urls: [v.homePageUrl, v.statusPageUrl, v.healthCheckUrl, v.secureHealthCheckUrl],
    vips: [v.vipAddress, v.secureVipAddress],
    coordinating: 'false',
    timestamps: [String(v.lastUpdatedTimestamp), String(v.lastDirtyTimestamp)],
    actionType: v.actionType,
  };
}

describe('parseInstanceBody properties', () => {
  it('throws nothing but EurekaBodyError, on any bytes, JSON or XML-ish text', () => {
    const xmlish = fc
      .array(
        fc.oneof(
          fc.constantFrom(
            '<instance>',
            '</instance>',
            '<app>',
            '</app>',
            '<port enabled="x">',
            '</port>',
          ),
          fc.constantFrom(
            '<metadata>',
            '</metadata>',
            '<a/>',
            '&amp;',
            '&#x',
            ';',
            '<!',
            '<?x?>',
            '<',
          ),
          fc.string({ maxLength: 6 }),
        ),
        { maxLength: 30 },
      )
      .map((parts) => parts.join(''));
    const jsonBodies = fc.oneof(
      fc.json(),
      fc
        .record({ instance: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 })) })
        .map((o) => JSON.stringify(o)),
      inputArb.map((i) => json({ ...i, port: i.port.port, metadata: { ...i.metadata } })),
    );
    const bodies = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      jsonBodies.map((s) => Buffer.from(s)),
      xmlish.map((s) => Buffer.from(s)),
    );
    fc.assert(
      fc.property(bodies, fc.constantFrom<EurekaFormat>('json', 'xml'), (raw, format) => {
        try {
          parseInstanceBody(raw, format);
        } catch (err) {
          assert.ok(err instanceof EurekaBodyError, String(err));
          assert.ok(err.field.length > 0);
        }
      }),
      { numRuns: 1000, seed: 23 },
    );
  });

  it('renders any view so that a plain JSON or XML reader reads back its field values', () => {
    fc.assert(
      fc.property(viewArb, (view) => {
        const fromJson = JSON.parse(renderInstance(view, 'json')) as {
          instance: Record<string, unknown>;
        };
        assert.deepEqual(fieldsOf(fromJson.instance), expectedFields(view));
        assert.equal(fromJson.instance['overriddenStatus'], view.overriddenStatus);
        const fromXml = reader.parse(renderInstance(view, 'xml')) as {
          instance: Record<string, unknown>[];
        };
        assert.deepEqual(fieldsOf(fromXml.instance[0]!), expectedFields(view));
      }),
      { numRuns: 300, seed: 23 },
    );
  });

  it('parses an input rendered as a body (JSON and XML) back to the same input', () => {
    fc.assert(
      fc.property(viewArb, (view) => {
        for (const format of ['json', 'xml'] as const) {
          assert.deepEqual(parse(renderInstance(view, format), format), inputOf(view), format);
        }
      }),
      { numRuns: 300, seed: 23 },
    );
  });
});

describe('renderApplications', () => {
  const LEASE = {
    renewalIntervalInSecs: 30,
    durationInSecs: 90,
    registrationTimestamp: 1,
    lastRenewalTimestamp: 2,
    evictionTimestamp: 0,
    serviceUpTimestamp: 3,
  };
  const view = (id: string, status: EurekaInstanceView['status']): EurekaInstanceView => ({
    ...JAVA_INPUT,
    instanceId: id,
    app: 'APP',
    status,
    metadata: {},
    dataCenterInfo: { name: 'MyOwn', className: DEFAULT_DATACENTER_CLASS, metadata: {} },
    leaseInfo: LEASE,
    lastUpdatedTimestamp: 4,
    lastDirtyTimestamp: 5,
    actionType: 'ADDED',
  });

  it("writes Eureka's JSON shape: strings for the header, arrays even of one", () => {
    const apps = {
      versionsDelta: 7,
      appsHashCode: 'UP_1_',
      applications: [{ name: 'APP', instances: [view('a', 'UP')] }],
    };
    const doc = JSON.parse(renderApplications(apps, 'json')) as {
      applications: {
        versions__delta: string;
        apps__hashcode: string;
        application: {
          name: string;
          instance: { instanceId: string; metadata: unknown; leaseInfo: unknown }[];
        }[];
      };
    };
    assert.equal(doc.applications.versions__delta, '7');
    assert.equal(doc.applications.apps__hashcode, 'UP_1_');
    assert.equal(doc.applications.application.length, 1);
    assert.equal(doc.applications.application[0]!.name, 'APP');
    assert.equal(doc.applications.application[0]!.instance.length, 1);
    const i = doc.applications.application[0]!.instance[0]!;
    assert.deepEqual(i.metadata, { '@class': 'java.util.Collections$EmptyMap' });
    assert.deepEqual(i.leaseInfo, LEASE);
    assert.equal(
      renderApplications({ versionsDelta: 1, appsHashCode: '', applications: [] }, 'json'),
      '{"applications":{"versions__delta":"1","apps__hashcode":"","application":[]}}',
    );
    assert.deepEqual(
      Object.keys(JSON.parse(renderApplication(apps.applications[0]!, 'json')) as object),
      ['application'],
    );
  });

  it("writes Eureka's XML shape, as Prometheus's eureka_sd reads it", () => {
    const apps = {
      versionsDelta: 3,
      appsHashCode: 'DOWN_1_UP_1_',
      applications: [{ name: 'APP', instances: [view('a', 'UP'), view('b', 'DOWN')] }],
    };
    const out = renderApplications(apps, 'xml');
    assert.ok(
      out.startsWith(
        '<applications><versions__delta>3</versions__delta><apps__hashcode>DOWN_1_UP_1_</apps__hashcode><application><name>APP</name><instance><instanceId>a</instanceId>',
      ),
      out.slice(0, 200),
    );
    assert.match(out, /<metadata class="java.util.Collections\$EmptyMap"\/>/);
    assert.match(out, /<isCoordinatingDiscoveryServer>false<\/isCoordinatingDiscoveryServer>/);
    assert.match(
      out,
      /<dataCenterInfo class="com.netflix.appinfo.InstanceInfo\$DefaultDataCenterInfo"><name>MyOwn<\/name><\/dataCenterInfo>/,
    );
    const doc = reader.parse(out) as { applications: { application: { instance: unknown[] }[] } };
    assert.equal(doc.applications.application[0]!.instance.length, 2);
    assert.ok(
      renderApplication(apps.applications[0]!, 'xml').startsWith(
        '<application><name>APP</name><instance>',
      ),
    );
    assert.equal(
      renderApplications({ versionsDelta: 1, appsHashCode: '', applications: [] }, 'xml'),
      '<applications><versions__delta>1</versions__delta><apps__hashcode></apps__hashcode></applications>',
    );
  });

  it('stays well-formed whatever the strings and metadata keys hold', () => {
    const v: EurekaInstanceView = {
      ...view('a<&>"\'', 'UP'),
      hostName: 'h\u0000\u0001\ud800\uffff\r\n\t',
      metadata: { 'ok.key': '<v>', 'bad key': 'x', '1st': 'y', 'a:b': 'z' },
    };
    const out = renderInstance(v, 'xml');
    const doc = reader.parse(out) as { instance: Record<string, unknown>[] };
    const i = doc.instance[0]!;
    assert.equal(i['instanceId'], 'a<&>"\'');
    assert.equal(i['hostName'], 'h\ufffd\ufffd\ufffd\ufffd\r\n\t');
    assert.deepEqual(i['metadata'], { 'ok.key': '<v>' });
    const j = JSON.parse(renderInstance(v, 'json')) as { instance: { metadata: unknown } };
    assert.deepEqual(j.instance.metadata, v.metadata);
  });
});
