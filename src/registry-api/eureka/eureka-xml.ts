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
 * Checked against Debian's Prometheus 2.42 (`eureka_sd_configs`): it reads every field above; note
 * that it reads `<metadata>` children as inner XML, so a value holding `&` or `<` reaches its labels
 * still escaped (`a&amp;b`), as it would from Eureka itself.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { PARSER_RENAMED_NAMES, readInstanceDocument } from './eureka-instance-reader.js';
import {
  EurekaBodyError,
  type EurekaApplication,
  type EurekaApplications,
  type EurekaInstanceInput,
  type EurekaInstanceView,
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
// Without the `u` flag (much faster on the hot path): any surrogate, paired or not, takes the slow
// path, whose `u` regex then leaves pairs alone.
// eslint-disable-next-line no-control-regex -- control characters are what it looks for
const NEEDS_ESCAPE = /[&<>"'\u0000-\u001f\ud800-\udfff\ufffe\uffff]/;
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

/*
 * The writer pushes pieces (constant tags, escaped values) into one array per instance and joins
 * it: a chain of `+` over a 10,000-instance registry allocates millions of rope pieces and spent
 * most of its time in GC (2-3x slower, see bench/micro/eureka-render.ts).
 */

/** Appends `<name>value</name>`; `open` and `close` are the constant tags. */
function field(p: string[], open: string, value: string | number, close: string): void {
  p.push(open, typeof value === 'number' ? String(value) : escapeXml(value), close);
}

function optionalField(p: string[], open: string, value: string | undefined, close: string): void {
  if (value !== undefined) p.push(open, escapeXml(value), close);
}

function pushMap(p: string[], m: Readonly<Record<string, string>>, emptyMarker: boolean): void {
  const at = p.length;
  p.push('<metadata>');
  let any = false;
  for (const key in m) {
    if (!XML_NAME.test(key)) continue;
    any = true;
    p.push(`<${key}>`, escapeXml(m[key]!), `</${key}>`);
  }
  if (any) p.push('</metadata>');
  else {
    p.length = at;
    if (emptyMarker) p.push('<metadata class="java.util.Collections$EmptyMap"/>');
  }
}

function pushInstance(p: string[], v: EurekaInstanceView): void {
  const dc = v.dataCenterInfo;
  const l = v.leaseInfo;
  field(p, '<instance><instanceId>', v.instanceId, '</instanceId>');
  field(p, '<hostName>', v.hostName, '</hostName>');
  field(p, '<app>', v.app, '</app>');
  optionalField(p, '<appGroupName>', v.appGroupName, '</appGroupName>');
  field(p, '<ipAddr>', v.ipAddr, '</ipAddr>');
  p.push('<status>', v.status, '</status><overriddenstatus>', v.overriddenStatus);
  p.push('</overriddenstatus><port enabled="', String(v.port.enabled), '">', String(v.port.port));
  p.push('</port><securePort enabled="', String(v.securePort.enabled), '">');
  p.push(String(v.securePort.port), '</securePort><countryId>1</countryId>');
  field(p, '<dataCenterInfo class="', dc.className, '">');
  field(p, '<name>', dc.name, '</name>');
  pushMap(p, dc.metadata, false);
  field(p, '</dataCenterInfo><leaseInfo><renewalIntervalInSecs>', l.renewalIntervalInSecs, '');
  field(p, '</renewalIntervalInSecs><durationInSecs>', l.durationInSecs, '</durationInSecs>');
  field(p, '<registrationTimestamp>', l.registrationTimestamp, '</registrationTimestamp>');
  field(p, '<lastRenewalTimestamp>', l.lastRenewalTimestamp, '</lastRenewalTimestamp>');
  field(p, '<evictionTimestamp>', l.evictionTimestamp, '</evictionTimestamp>');
  field(p, '<serviceUpTimestamp>', l.serviceUpTimestamp, '</serviceUpTimestamp></leaseInfo>');
  pushMap(p, v.metadata, true);
  optionalField(p, '<homePageUrl>', v.homePageUrl, '</homePageUrl>');
  optionalField(p, '<statusPageUrl>', v.statusPageUrl, '</statusPageUrl>');
  optionalField(p, '<healthCheckUrl>', v.healthCheckUrl, '</healthCheckUrl>');
  optionalField(p, '<secureHealthCheckUrl>', v.secureHealthCheckUrl, '</secureHealthCheckUrl>');
  optionalField(p, '<vipAddress>', v.vipAddress, '</vipAddress>');
  optionalField(p, '<secureVipAddress>', v.secureVipAddress, '</secureVipAddress>');
  p.push('<isCoordinatingDiscoveryServer>false</isCoordinatingDiscoveryServer>');
  field(p, '<lastUpdatedTimestamp>', v.lastUpdatedTimestamp, '</lastUpdatedTimestamp>');
  field(p, '<lastDirtyTimestamp>', v.lastDirtyTimestamp, '</lastDirtyTimestamp>');
  p.push('<actionType>', v.actionType, '</actionType></instance>');
}

/** Appends `<application>`, each instance joined on its own (flat pieces, joined again once). */
function pushApplication(parts: string[], app: EurekaApplication): void {
  field(parts, '<application><name>', app.name, '</name>');
  for (const v of app.instances) {
    const p: string[] = [];
    pushInstance(p, v);
    parts.push(p.join(''));
  }
  parts.push('</application>');
}

/** `<applications>` for `GET /apps`, `/apps/delta`, `/vips/..`, `/svips/..`. */
export function renderXmlApplications(apps: EurekaApplications): string {
  const parts: string[] = [];
  field(parts, '<applications><versions__delta>', apps.versionsDelta, '</versions__delta>');
  field(parts, '<apps__hashcode>', apps.appsHashCode, '</apps__hashcode>');
  for (const app of apps.applications) pushApplication(parts, app);
  parts.push('</applications>');
  return parts.join('');
}

/** `<application>` for `GET /apps/{app}`. */
export function renderXmlApplication(app: EurekaApplication): string {
  const parts: string[] = [];
  pushApplication(parts, app);
  return parts.join('');
}

/** `<instance>` for `GET /apps/{app}/{id}` and `/instances/{id}`. */
export function renderXmlInstance(view: EurekaInstanceView): string {
  const p: string[] = [];
  pushInstance(p, view);
  return p.join('');
}
