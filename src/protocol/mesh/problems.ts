/**
 * @module Every issue of a failed mesh schema parse as a {@link ResourceProblem}: the full field
 * path and a reason in words (`required`, `unknown field`, `must be one of ...`).
 */
import type { z } from 'zod';
import { formatPath } from '../validation.js';
import type { ResourceProblem } from './resource.js';
import type { Renamed } from './seed-spellings.js';

/**
 * Istio fields Meshwork does not implement (yet): refused with a reason that says so, rather
 * than as a typo. docs/mesh.md lists the subset that is supported.
 */
const ISTIO_ONLY_FIELDS = new Set([
  'addresses',
  'consecutiveErrors',
  'consecutiveLocalOriginFailures',
  'corsPolicy',
  'delegate',
  'directResponse',
  'egress',
  'exponentialDelay',
  'exportTo',
  'grpcStatus',
  'h2UpgradePolicy',
  'http2Error',
  'inboundConnectionPool',
  'ingress',
  'localityLbSetting',
  'maxConcurrentStreams',
  'minimumRingSize',
  'mirrors',
  'notRequestPrincipals',
  'percent',
  'portLevelSettings',
  'proxyProtocol',
  'redirect',
  'requestPrincipals',
  'retryRemoteLocalities',
  'sourceLabels',
  'sourceNamespace',
  'splitExternalLocalOriginErrors',
  'statPrefix',
  'subjectAltNames',
  'targetRef',
  'targetRefs',
  'tcp',
  'tcpKeepalive',
  'tls',
  'tunnel',
  'uriRegexRewrite',
  'useClientProtocol',
  'warmupDurationSecs',
  'withoutHeaders',
  'workloadSelector',
]);

const NOT_SUPPORTED =
  'not supported: an Istio field Meshwork does not implement (docs/mesh.md lists the fields it does)';

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  object: 'a map of fields',
  record: 'a map',
  array: 'a list',
};

/** The problems of a failed parse, each at `prefix` + the issue's path, renamed paths mapped back. */
export function problemsOf(
  error: z.ZodError,
  prefix: string,
  renamed: readonly Renamed[] = [],
): ResourceProblem[] {
  const out: ResourceProblem[] = [];
  const add = (path: readonly PropertyKey[], reason: string) =>
    out.push({ path: written(formatPath(path, prefix), renamed), reason });
  for (const issue of error.issues) {
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          add(
            [...issue.path, key],
            ISTIO_ONLY_FIELDS.has(key) && !issue.path.includes('metadata')
              ? NOT_SUPPORTED
              : 'unknown field',
          );
        }
        break;
      case 'invalid_type':
        // A schema's own reason (a duration's) beats zod's "Invalid input: expected ...".
        add(
          issue.path,
          issue.input === undefined
            ? 'required'
            : issue.message.startsWith('Invalid input')
              ? `must be ${TYPE_WORDS[issue.expected] ?? issue.expected}`
              : issue.message,
        );
        break;
      case 'invalid_value':
        add(
          issue.path,
          issue.input === undefined
            ? 'required'
            : `must be one of ${issue.values.map((v) => String(v)).join(', ')}`,
        );
        break;
      case 'invalid_key':
        add(issue.path, issue.issues[0]?.message ?? issue.message);
        break;
      default:
        add(issue.path, issue.message);
    }
  }
  return out;
}

/** `path` as the document wrote it, where a seed respelling renamed part of it. */
function written(path: string, renamed: readonly Renamed[]): string {
  let best: Renamed | undefined;
  for (const r of renamed) {
    const under =
      path === r.istio || path.startsWith(`${r.istio}.`) || path.startsWith(`${r.istio}[`);
    if (under && (best === undefined || r.istio.length > best.istio.length)) best = r;
  }
  return best === undefined ? path : best.written + path.slice(best.istio.length);
}
