/**
 * @module `meshwork apply -f FILE`: makes the catalog match a file, declaratively: mesh resources
 * and an instance set, all or nothing.
 */
import { resolve } from 'node:path';
import { ERROR_CODES, errors, isMeshError } from '../../core/errors.js';
import type { ApplyResponse } from '../../protocol/api-types.js';
import type { MeshApplyResponse, MeshDocumentProblem } from '../../protocol/mesh/api.js';
import type { RegistrationInput } from '../../protocol/registration.js';
import { withClient, printJson } from '../client-command.js';
import { CLIENT_FLAGS, parseFlags, type Command, type Io } from '../command.js';
import { readMeshFile, type FileDocument } from '../mesh-file.js';
import {
  documentPlace,
  lineDiff,
  problemLine,
  resourceLabel,
  resourceYaml,
} from '../mesh-output.js';

export const command: Command = {
  name: 'apply',
  synopsis: 'Apply mesh resources and instances from a file, all or nothing',
  help: `Usage: meshwork apply -f FILE [--set NAME] [--dry-run] [--json] [--registry URL [--registry-ca FILE]]

Applies a YAML file of one or more documents (separated by "---"), all or nothing: if any
document is invalid, nothing is stored and every problem is printed (exit code 2).

- A document with apiVersion and kind is a mesh resource (VirtualService, DestinationRule,
  ServiceEntry, Sidecar, AuthorizationPolicy, PeerAuthentication, LocalRateLimit,
  ResponseCache, RetryBudget; docs/mesh.md). It is created, or replaced as a whole. Other
  kinds (a Kubernetes Deployment) are refused.
- A document with "services:" is the instance set (at most one per file): its instances are
  created and updated, and the instances an earlier apply of the same set declared and the
  file no longer lists are removed. Nothing else in the catalog is touched. The set is the
  document's "set:" key, else --set, else the file's absolute path.

Prints one line per resource (created, configured or unchanged), then the instance summary;
warnings (the spellings accepted where they stray from Istio's) go to stderr.

Flags:
  -f, --file FILE   the file to apply (required)
  --set NAME        the instance set's name when the file has no "set:"
  --dry-run         validate and show what would change, as a line diff; store nothing

File:
  set: shop                     # optional
  services:
    - service: payments
      id: payments-1
      address: 10.0.0.5
      port: 8080
      meta: { version: v2 }
      checks:
        - http: http://10.0.0.5:8080/health
          interval: 5s
  ---
  apiVersion: networking.istio.io/v1beta1
  kind: DestinationRule
  metadata: { name: payments }
  spec:
    host: payments
    subsets:
      - { name: v2, labels: { version: v2 } }

Examples:
  meshwork apply -f services.yaml
  meshwork apply -f canary.yaml --dry-run
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(argv, {
      ...CLIENT_FLAGS,
      file: { type: 'string', short: 'f' },
      set: { type: 'string' },
      'dry-run': { type: 'boolean' },
    });
    if (positionals.length > 0) throw errors.cliUsage(`unexpected argument "${positionals[0]}"`);
    const file = values.file;
    if (file === undefined) throw errors.cliUsage('-f FILE is required');
    const docs = readMeshFile(file);
    const set = values.set ?? `file:${resolve(file)}`;
    const dryRun = values['dry-run'] === true;
    if (!dryRun && isInstancesOnly(docs)) {
      // The instance-set format that came first: same request, same output.
      const doc = (docs[0]?.value ?? {}) as Record<string, unknown>;
      const services = doc.services ?? [];
      if (!Array.isArray(services)) {
        throw errors.configInvalid([`${file}: services: must be a list of registrations`]);
      }
      const own = typeof doc.set === 'string' && doc.set !== '' ? doc.set : set;
      const r = await withClient(values, io, (c) => c.apply(own, services as RegistrationInput[]));
      if (values.json === true) printJson(io, r);
      else printInstances(io, r, '');
      return 0;
    }
    let r: MeshApplyResponse;
    try {
      r = await withClient(values, io, (c) =>
        c.meshApply({ documents: docs.map((d) => d.value), set, dryRun }),
      );
    } catch (err) {
      if (!isMeshError(err, ERROR_CODES.VALIDATION)) throw err;
      const problems = err.details?.problems as MeshDocumentProblem[] | undefined;
      if (problems === undefined) io.stderr.write(`${file}: ${err.message}\n`);
      for (const p of problems ?? []) {
        io.stderr.write(`${problemLine(file, { ...p, ...numberOf(docs, p.document) })}\n`);
      }
      return 2;
    }
    for (const w of r.warnings) {
      const place = documentPlace(numberOf(docs, w.document).number, w.resource);
      io.stderr.write(`warning: ${file}: ${place}: ${w.message}\n`);
    }
    if (values.json === true) {
      printJson(io, r);
      return 0;
    }
    const suffix = r.dryRun ? ' (dry run)' : '';
    for (const c of r.resources) {
      const label = resourceLabel(c.key);
      io.stdout.write(`${label} ${c.action}${suffix}\n`);
      if (r.dryRun && c.action !== 'unchanged') {
        io.stdout.write(
          lineDiff(
            c.before === undefined ? undefined : resourceYaml(c.before),
            resourceYaml(c.after),
            {
              from: `${label} (stored)`,
              to: `${label} (${file})`,
            },
          ),
        );
      }
    }
    if (r.instances !== undefined) printInstances(io, r.instances, suffix);
    return 0;
  },
};

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A file of the first format: at most one document, with no apiVersion or kind. */
function isInstancesOnly(docs: readonly FileDocument[]): boolean {
  return (
    docs.length <= 1 &&
    docs.every(
      (d) =>
        isMapping(d.value) &&
        !Object.hasOwn(d.value, 'apiVersion') &&
        !Object.hasOwn(d.value, 'kind'),
    )
  );
}

/** The file's document number of request document `index`. */
function numberOf(docs: readonly FileDocument[], index: number | undefined): { number?: number } {
  const n = index === undefined ? undefined : docs[index]?.number;
  return n === undefined ? {} : { number: n };
}

function printInstances(io: Io, r: ApplyResponse, suffix: string): void {
  io.stdout.write(
    `applied ${r.set}: ${r.created.length} created, ${r.updated.length} updated, ${r.unchanged.length} unchanged, ${r.deleted.length} deleted (index ${r.index})${suffix}\n`,
  );
  for (const id of r.created) io.stdout.write(`  + ${id}\n`);
  for (const id of r.updated) io.stdout.write(`  ~ ${id}\n`);
  for (const id of r.deleted) io.stdout.write(`  - ${id}\n`);
}
