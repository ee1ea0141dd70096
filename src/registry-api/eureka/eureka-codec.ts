/**
 * @module The Eureka API's codec (issue 23): which format a request speaks and wants, registration
 * bodies in (JSON or XML, validated, Eureka's defaults applied), applications and instances out in
 * Eureka's wire shapes. Pure functions, no catalog, no I/O. The formats themselves live in
 * eureka-json.ts and eureka-xml.ts; both read through eureka-instance-reader.ts.
 */
import {
  renderJsonApplication,
  renderJsonApplications,
  renderJsonInstance,
  parseJsonInstance,
} from './eureka-json.js';
import {
  EurekaBodyError,
  type EurekaApplication,
  type EurekaApplications,
  type EurekaFormat,
  type EurekaInstanceInput,
  type EurekaInstanceView,
} from './eureka-model.js';
import {
  parseXmlInstance,
  renderXmlApplication,
  renderXmlApplications,
  renderXmlInstance,
} from './eureka-xml.js';

/** Largest registration body read (a full one, 64 metadata keys of 512 characters, is ~70 KiB). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** The format a media type names: `application/json`, `+json` -> json; `*\/xml`, `+xml` -> xml. */
function mediaFormat(mediaType: string): EurekaFormat | undefined {
  const t = mediaType.trim().toLowerCase();
  if (t === 'application/json' || t === 'text/json' || t.endsWith('+json')) return 'json';
  if (t === 'application/xml' || t === 'text/xml' || t.endsWith('+xml')) return 'xml';
  return undefined;
}

/** Ranges that take whatever Eureka answers first: XML. */
const WILDCARDS: ReadonlySet<string> = new Set(['*/*', 'application/*', 'text/*']);

/**
 * The answer's format from an `Accept` header: the acceptable media type with the highest
 * q-value (the first listed on a tie) that names JSON or XML. Absent, `*\/*`, or nothing either
 * names: XML, as Eureka's Jersey resources list XML first.
 * @example negotiateFormat('application/json') // 'json'
 */
export function negotiateFormat(accept: string | undefined): EurekaFormat {
  if (accept === undefined) return 'xml';
  let best: EurekaFormat = 'xml';
  let bestQ = 0;
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';');
    const t = type.trim().toLowerCase();
    const format = WILDCARDS.has(t) ? 'xml' : mediaFormat(t);
    if (format === undefined) continue;
    let q = 1;
    for (const param of params) {
      const [name = '', value = ''] = param.split('=');
      if (name.trim().toLowerCase() === 'q') q = Number(value.trim());
    }
    if (!(q >= 0 && q <= 1)) q = 0;
    if (q > bestQ) {
      best = format;
      bestQ = q;
    }
  }
  return best;
}

/**
 * A body's format from its `Content-Type`; absent or neither JSON nor XML: XML when the body's first
 * non-blank byte (after a UTF-8 byte order mark) is `<`, else JSON.
 * @example bodyFormat(undefined, Buffer.from(' <instance/>')) // 'xml'
 */
export function bodyFormat(contentType: string | undefined, raw: Buffer): EurekaFormat {
  const named = contentType === undefined ? undefined : mediaFormat(contentType.split(';')[0]!);
  if (named !== undefined) return named;
  let i = raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? 3 : 0;
  while (
    i < raw.length &&
    (raw[i] === 0x20 || raw[i] === 0x09 || raw[i] === 0x0a || raw[i] === 0x0d)
  )
    i++;
  return raw[i] === 0x3c ? 'xml' : 'json';
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * The registration in a body (`POST /apps/{app}`), validated, with Eureka's defaults. Throws only
 * {@link EurekaBodyError}, whose `field` is the dotted path of the offending field (`body` when the
 * document does not parse, `instance` when it is not an instance document): answer it 400.
 * @example parseInstanceBody(Buffer.from('{"instance":{...}}'), 'json').app
 */
export function parseInstanceBody(raw: Buffer, format: EurekaFormat): EurekaInstanceInput {
  if (raw.length > MAX_BODY_BYTES) {
    throw new EurekaBodyError('body', `larger than ${MAX_BODY_BYTES} bytes`);
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw new EurekaBodyError('body', 'not valid UTF-8');
  }
  return format === 'json' ? parseJsonInstance(text) : parseXmlInstance(text);
}

/**
 * `GET /apps`, `/apps/delta`, `/vips/{vip}`, `/svips/{svip}`: `{"applications": {...}}` or
 * `<applications>`, every list an array even of one.
 */
export function renderApplications(apps: EurekaApplications, format: EurekaFormat): string {
  return format === 'json' ? renderJsonApplications(apps) : renderXmlApplications(apps);
}

/** `GET /apps/{app}`: `{"application": {...}}` or `<application>`. */
export function renderApplication(app: EurekaApplication, format: EurekaFormat): string {
  return format === 'json' ? renderJsonApplication(app) : renderXmlApplication(app);
}

/** `GET /apps/{app}/{id}`, `/instances/{id}`: `{"instance": {...}}` or `<instance>`. */
export function renderInstance(view: EurekaInstanceView, format: EurekaFormat): string {
  return format === 'json' ? renderJsonInstance(view) : renderXmlInstance(view);
}

/** The media type to answer with for `format`. */
export function contentTypeOf(format: EurekaFormat): string {
  return format === 'json' ? 'application/json' : 'application/xml';
}
