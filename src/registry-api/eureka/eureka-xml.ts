/**
 * @module Eureka's XML wire format (the XStream documents of Eureka 1.10, which Prometheus's
 * `eureka_sd_configs` reads): the registration body in, and applications, an application or an
 * instance out.
 *
 * Reading is hardened against entity attacks: any `<!` declaration (DOCTYPE, ENTITY, and with them
 * CDATA, which Eureka never writes) is refused before the parser runs, so there is no XXE and no
 * billion laughs; fast-xml-parser runs with entity processing off and a nesting cap, and only the
 * five predefined references and character references are decoded, here, one character each.
 * The parsed tree takes the JSON body's shape (`port` becomes `{"$": "8080", "@enabled": "true"}`),
 * so one reader (eureka-instance-reader.ts) validates both formats.
 *
 * Writing is a direct string writer (faster than XMLBuilder on a 10,000-instance registry, see
 * bench/micro/eureka-render.ts). Text and attributes are escaped, and characters XML 1.0 cannot
 * carry (controls, lone surrogates, U+FFFE/U+FFFF) become U+FFFD, so the document is always
 * well-formed. A metadata key that is not a plain XML name (`[A-Za-z_][A-Za-z0-9._-]*`, which
 * covers Spring's `management.port`) cannot be an element name: it is left out of the XML answer
 * (the JSON answer has it), rather than renamed into something no Eureka client would decode.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { PARSER_RENAMED_NAMES, readInstanceDocument } from './eureka-instance-reader.js';
import {
  EurekaBodyError,
  type EurekaApplication,
  type EurekaApplications,
  type EurekaInstanceInput,
  type EurekaInstanceView,
  type EurekaPort,
} from './eureka-model.js';

/** An instance document is 4 levels deep (instance > dataCenterInfo > metadata > key). */
export const MAX_XML_DEPTH = 16;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  textNodeName: '$',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: MAX_XML_DEPTH,
  isArray: () => false,
});

/** `<!DOCTYPE`, `<!ENTITY`, `<![CDATA[`... but not a comment. */
const DECLARATION = /<!(?!--)/;
const REFERENCE = /&([^;&<]{0,12});?/g;
const PREDEFINED: Readonly<Record<string, string>> = {
  lt: '<',
  gt: '>',
  amp: '&',
  quot: '"',
  apos: "'",
};

function decodeReference(ref: string, terminated: boolean, field: string): string {
  const named = Object.hasOwn(PREDEFINED, ref) ? PREDEFINED[ref] : undefined;
  if (terminated && named !== undefined) return named;
  const code = !terminated
    ? NaN
    : /^#x[0-9a-fA-F]{1,6}$/.test(ref)
      ? parseInt(ref.slice(2), 16)
      : /^#[0-9]{1,7}$/.test(ref)
        ? parseInt(ref.slice(1), 10)
        : NaN;
  if (!(code <= 0x10ffff)) {
    throw new EurekaBodyError(field, `not a valid XML reference: &${ref}${terminated ? ';' : ''}`);
  }
  return String.fromCodePoint(code);
}

/** `text` with its references decoded; anything but a predefined or a character reference refused. */
function decodeText(text: string, field: string): string {
  if (!text.includes('&')) return text;
  return text.replace(REFERENCE, (whole: string, ref: string) =>
    decodeReference(ref, whole.endsWith(';'), field),
  );
}

/** fast-xml-parser's renamed tag names (`__toString`). */
const RENAMED: ReadonlySet<string> = new Set(PARSER_RENAMED_NAMES.map((n) => `__${n}`));

/** Elements holding others: written empty (`<metadata/>`), they are empty objects, not ''. */
const CONTAINERS: ReadonlySet<string> = new Set([
  'instance',
  'dataCenterInfo',
  'leaseInfo',
  'metadata',
]);

/**
 * fast-xml-parser's tree in the JSON body's shape: references decoded, blank text between elements
 * dropped, an empty container an empty object.
 */
function normalize(node: unknown, field: string, name: string): unknown {
  if (typeof node === 'string') {
    return CONTAINERS.has(name) && node.trim() === '' ? {} : decodeText(node, field);
  }
  if (Array.isArray(node)) throw new EurekaBodyError(field, 'must appear once');
  if (typeof node !== 'object' || node === null) return node;
  const entries: [string, unknown][] = [];
  let hasChildren = false;
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (key === '$') continue;
    if (!key.startsWith('@')) hasChildren = true;
    // fast-xml-parser renames <toString> to __toString; give the name back so the reader refuses
    // it by its real name (a literal <__toString> is refused with it: a small price for no mix-up).
    const name = RENAMED.has(key) ? key.slice(2) : key;
    entries.push([name, normalize(value, `${field}.${name}`, name)]);
  }
  const text = (node as Record<string, unknown>)['$'];
  if (typeof text === 'string' && text.trim() !== '') {
    if (hasChildren) throw new EurekaBodyError(field, 'text mixed with elements');
    entries.push(['$', decodeText(text, `${field}.$`)]);
  }
  return Object.fromEntries(entries);
}

/** The registration in an XML body (`<instance>...</instance>`); throws only EurekaBodyError. */
export function parseXmlInstance(text: string): EurekaInstanceInput {
  if (DECLARATION.test(text)) {
    throw new EurekaBodyError(
      'body',
      'DOCTYPE, ENTITY and CDATA declarations are not accepted in a Eureka document',
    );
  }
  let tree: unknown;
  try {
    tree = parser.parse(text);
  } catch (err) {
    throw new EurekaBodyError('body', `not well-formed XML (${(err as Error).message})`);
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new EurekaBodyError(
      'body',
      `not well-formed XML (${valid.err.msg} at line ${valid.err.line}, column ${valid.err.col})`,
    );
  }
  const root = tree as Record<string, unknown>;
  const roots = Object.keys(root).filter((k) => k !== '$');
  if (roots.length !== 1 || roots[0] !== 'instance') {
    throw new EurekaBodyError('instance', 'the body must be one <instance> element');
  }
  return readInstanceDocument({ instance: normalize(root['instance'], 'instance', 'instance') });
}

// --- writing ---

/** Characters that need escaping, or replacing (XML 1.0 §2.2), in text or attributes. */
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const NEEDS_ESCAPE = /[&<>"'\u0000-\u001f\ufffe\uffff]|[\ud800-\udfff]/u;
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const ESCAPED = /[&<>"'\u0000-\u001f\ufffe\uffff]|[\ud800-\udfff]/gu;

function escapeChar(c: string): string {
  switch (c) {
    case '&':
      return '&amp;';
    case '<':
      return '&lt;';
    case '>':
      return '&gt;';
    case '"':
      return '&quot;';
    case "'":
      return '&apos;';
    // Tab, line feed and carriage return survive a reader only as references (attribute value
    // normalisation, XML 1.0 §3.3.3; line-end handling, §2.11).
    case '\t':
      return '&#9;';
    case '\n':
      return '&#10;';
    case '\r':
      return '&#13;';
    default:
      return '\ufffd';
  }
}

/** `s` safe in XML text and in a double-quoted attribute. */
export function escapeXml(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPED, escapeChar) : s;
}

const XML_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;

const el = (name: string, value: string | number): string =>
  `<${name}>${typeof value === 'number' ? value : escapeXml(value)}</${name}>`;

const optionalEl = (name: string, value: string | undefined): string =>
  value === undefined ? '' : el(name, value);

const xmlPort = (name: string, p: EurekaPort): string =>
  `<${name} enabled="${p.enabled}">${p.port}</${name}>`;

function xmlMap(m: Readonly<Record<string, string>>, emptyMarker: boolean): string {
  let out = '';
  for (const key in m) {
    if (XML_NAME.test(key)) out += el(key, m[key]!);
  }
  if (out !== '') return `<metadata>${out}</metadata>`;
  return emptyMarker ? '<metadata class="java.util.Collections$EmptyMap"/>' : '';
}

function xmlInstance(v: EurekaInstanceView): string {
  const dc = v.dataCenterInfo;
  const l = v.leaseInfo;
  return (
    '<instance>' +
    el('instanceId', v.instanceId) +
    el('hostName', v.hostName) +
    el('app', v.app) +
    optionalEl('appGroupName', v.appGroupName) +
    el('ipAddr', v.ipAddr) +
    el('status', v.status) +
    el('overriddenstatus', v.overriddenStatus) +
    xmlPort('port', v.port) +
    xmlPort('securePort', v.securePort) +
    '<countryId>1</countryId>' +
    `<dataCenterInfo class="${escapeXml(dc.className)}">` +
    el('name', dc.name) +
    xmlMap(dc.metadata, false) +
    '</dataCenterInfo><leaseInfo>' +
    el('renewalIntervalInSecs', l.renewalIntervalInSecs) +
    el('durationInSecs', l.durationInSecs) +
    el('registrationTimestamp', l.registrationTimestamp) +
    el('lastRenewalTimestamp', l.lastRenewalTimestamp) +
    el('evictionTimestamp', l.evictionTimestamp) +
    el('serviceUpTimestamp', l.serviceUpTimestamp) +
    '</leaseInfo>' +
    xmlMap(v.metadata, true) +
    optionalEl('homePageUrl', v.homePageUrl) +
    optionalEl('statusPageUrl', v.statusPageUrl) +
    optionalEl('healthCheckUrl', v.healthCheckUrl) +
    optionalEl('secureHealthCheckUrl', v.secureHealthCheckUrl) +
    optionalEl('vipAddress', v.vipAddress) +
    optionalEl('secureVipAddress', v.secureVipAddress) +
    '<isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>' +
    el('lastUpdatedTimestamp', v.lastUpdatedTimestamp) +
    el('lastDirtyTimestamp', v.lastDirtyTimestamp) +
    el('actionType', v.actionType) +
    '</instance>'
  );
}

function xmlApplicationBody(app: EurekaApplication): string {
  let out = el('name', app.name);
  for (const i of app.instances) out += xmlInstance(i);
  return out;
}

/** `<applications>` for `GET /apps`, `/apps/delta`, `/vips/..`, `/svips/..`. */
export function renderXmlApplications(apps: EurekaApplications): string {
  let out =
    '<applications>' +
    el('versions__delta', apps.versionsDelta) +
    el('apps__hashcode', apps.appsHashCode);
  for (const app of apps.applications)
    out += `<application>${xmlApplicationBody(app)}</application>`;
  return out + '</applications>';
}

/** `<application>` for `GET /apps/{app}`. */
export function renderXmlApplication(app: EurekaApplication): string {
  return `<application>${xmlApplicationBody(app)}</application>`;
}

/** `<instance>` for `GET /apps/{app}/{id}` and `/instances/{id}`. */
export function renderXmlInstance(view: EurekaInstanceView): string {
  return xmlInstance(view);
}
