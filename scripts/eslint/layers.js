// Local ESLint rule `meshwork/layers`: the dependency rules of docs/architecture.md, at the level
// the map draws them: folders, subfolders and files of src/, and the packages core/ and the SDK
// may use. Every import inside src/ is relative (ESM, explicit .js), so each is resolved against
// the importing file; no resolver package is needed. Import cycles are meshwork/no-cycle's.
import { basename, join } from 'node:path';
import { ROOT, importTarget, moduleReferences, packageOf, srcRelative } from './project.js';

/**
 * registry/'s internals: what dns/, registry-api/ and control-plane/ may not reach (rule 3).
 * The rest of registry/ (its top-level files but catalog-view.ts) is the catalog facade.
 */
export const REGISTRY_INTERNALS = [
  'registry/store',
  'registry/watch',
  'registry/health',
  'registry/cluster',
  'registry/catalog-view.ts',
];

/**
 * The packages the SDK (client/, and protocol/ and core/ it imports) may load (rule 2).
 * @opentelemetry/api (issue 21): `client.fetch` sends the app's active trace context; the API is
 * the small, dependency-free package OpenTelemetry makes for libraries (no-ops until an app
 * registers an SDK); the SDK itself stays out of the client.
 */
export const SDK_PACKAGES = ['undici', 'zod', 're2js', '@opentelemetry/api'];

const REGISTRY_FACADE = { to: 'registry', except: REGISTRY_INTERNALS };
// Rule 7: a component's options.ts may build its schema from config/'s sources helpers.
const CONFIG_FROM_OPTIONS = { to: 'config', from: 'options.ts' };
const ALL_BUT_TESTING_AND_CLI = [
  'core',
  'protocol',
  'config',
  'agent',
  'telemetry',
  'registry',
  'registry-api',
  'dns',
  'client',
  'proxy',
  'gateway',
  'sidecar',
  'control-plane',
  'ui',
  'sync',
];

/**
 * What each top-level folder of src/ may import besides itself ('' is src/index.ts). An entry
 * names a folder, a subfolder or a file of src/ (`to`); `except` takes parts of it back; `from`
 * narrows the importing files to those with that name; `typeOnly` wants `import type`;
 * `notNames` are bindings it may not take. Nothing lists cli/ (rule 6) or testing/ (rule 8).
 */
export const LAYERS = {
  core: [],
  protocol: ['core'],
  // config/ loads and validates; the schemas are the components' own (options.ts).
  config: ['core', 'protocol'],
  // The agent's options (schema, defaults, env table); its runtime is composed in cli/. Its TLS
  // files are checked with the loader the SDK's clients use (client/tls-files.ts: node only).
  agent: ['core', 'protocol', 'config', 'dns/options.ts', 'client/tls-files.ts'],
  telemetry: ['core'],
  registry: ['core', 'protocol', 'telemetry'],
  'registry-api': ['core', 'protocol', REGISTRY_FACADE],
  dns: ['core', 'protocol', 'telemetry'],
  client: ['core', 'protocol'],
  // The SDK's balancers, outlier detection, retry policy and instance selection, shared with
  // the proxies; not its HTTP client or registration.
  proxy: [
    'core',
    'protocol',
    'telemetry',
    'client/balancers',
    'client/resilience',
    'client/discovery.ts',
    // undici's Agent as the SDK loads it (from its own file, checked at load; client/undici.ts).
    'client/undici.ts',
  ],
  gateway: ['core', 'protocol', 'telemetry', 'proxy', 'client', CONFIG_FROM_OPTIONS],
  sidecar: ['core', 'protocol', 'telemetry', 'proxy', 'client', CONFIG_FROM_OPTIONS],
  // Orchestrator sync (issue 24): a registration source like any other, so it reaches the agent
  // over HTTP through client/ only, never registry/ or registry-api/.
  sync: ['core', 'protocol', 'telemetry', 'client', CONFIG_FROM_OPTIONS],
  // Rule 5: it is handed the catalog by cli/ and reads and watches it; the writer stays out.
  'control-plane': [
    'core',
    'protocol',
    'telemetry',
    CONFIG_FROM_OPTIONS,
    { ...REGISTRY_FACADE, typeOnly: true, notNames: ['Registry', 'createRegistry'] },
  ],
  // The dashboard: serve.ts is handed to the API server by cli/; app/ is browser code that
  // reaches the agent over HTTP only (it imports nothing of src/ outside ui/).
  ui: ['core', 'protocol'],
  testing: ['core', 'protocol', 'registry', 'client'],
  cli: ALL_BUT_TESTING_AND_CLI,
  '': ALL_BUT_TESTING_AND_CLI,
};

/**
 * Packages a folder may import: `none` refuses every bare specifier (node: built-ins too),
 * `only` lists the packages allowed besides node: built-ins. Folders not listed may import any.
 */
export const PACKAGES = {
  core: { none: true },
  client: { only: SDK_PACKAGES },
  protocol: { only: SDK_PACKAGES },
};

/**
 * Imports the rules refuse but today's code still has, each until the work named in `why`
 * lands. An exception that no longer matches an import of its file is reported, so it is
 * removed rather than left to hide the next one.
 */
export const IMPORT_EXCEPTIONS = [];

const within = (path, prefix) => path === prefix || path.startsWith(`${prefix}/`);
const layerOf = (rel) => (rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '');
const show = (layer) => (layer === '' ? 'src/index.ts' : `${layer}/`);
const showTo = (to) => (to.endsWith('.ts') ? to : `${to}/`);

/** Why `fromRel` may not import `ref` (a module of src/, `target`), or undefined if it may. */
function refusal(fromRel, target, ref) {
  const from = layerOf(fromRel);
  const to = layerOf(target);
  if (to === from) return undefined;
  const entries = LAYERS[from].map((e) => (typeof e === 'string' ? { to: e } : e));
  const covering = entries.filter((e) => within(target, e.to));
  const entry = covering.find((e) => !e.except?.some((x) => within(target, x)));
  const data = { from: show(from), to: to === '' ? 'src/index.ts' : showTo(target) };
  if (covering.length === 0) {
    const allowed = entries.map((e) => showTo(e.to)).join(', ') || 'nothing';
    return { messageId: 'forbidden', data: { ...data, to: show(to), allowed } };
  }
  if (entry === undefined) return { messageId: 'internal', data: { ...data, layer: to } };
  if (entry.from !== undefined && basename(fromRel) !== entry.from) {
    return { messageId: 'fromFile', data: { ...data, to: showTo(entry.to), file: entry.from } };
  }
  if (entry.typeOnly && !ref.typeOnly) return { messageId: 'typeOnly', data };
  const taken = ref.names.find((n) => n === '*' || entry.notNames?.includes(n));
  if (entry.notNames && taken !== undefined) {
    return { messageId: 'name', data: { ...data, name: taken === '*' ? 'everything' : taken } };
  }
  return undefined;
}

/** Why a folder may not import the package `pkg`, or undefined if it may. */
function packageRefusal(layer, pkg) {
  const rule = PACKAGES[layer];
  if (rule === undefined) return undefined;
  if (rule.none) return { messageId: 'corePackage', data: { pkg } };
  if (pkg.startsWith('node:') || rule.only.includes(pkg)) return undefined;
  return {
    messageId: 'sdkPackage',
    data: { from: show(layer), pkg, allowed: rule.only.join(', ') },
  };
}

/** Root-export statements: src/index.ts holds nothing else (no logic). */
const REEXPORT = new Set(['ImportDeclaration', 'ExportAllDeclaration', 'ExportNamedDeclaration']);

export const layersRule = {
  meta: {
    type: 'problem',
    docs: { description: 'enforce the dependency rules of docs/architecture.md' },
    schema: [
      {
        type: 'object',
        properties: {
          exceptions: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                from: { type: 'string' },
                to: { type: 'string' },
                why: { type: 'string' },
              },
              required: ['from', 'to', 'why'],
              additionalProperties: false,
            },
          },
        },
        additionalProperties: false,
      },
    ],
    messages: {
      forbidden:
        '{{from}} may not import {{to}} (allowed: {{allowed}}; docs/architecture.md, Dependency rules)',
      internal:
        '{{from}} may not import {{to}}: it reaches {{layer}}/ only through its facade (rule 3)',
      fromFile: 'in {{from}}, only {{file}} may import {{to}} (rule 7)',
      typeOnly: '{{from}} may import {{to}} only with `import type`: it reads the catalog (rule 5)',
      name: '{{from}} may not take {{name}} from {{to}}: it reads and watches the catalog, never writes it (rule 5)',
      corePackage: 'core/ imports nothing: not "{{pkg}}" (rule 1)',
      sdkPackage:
        '{{from}} may not import "{{pkg}}": the SDK loads only node: built-ins, {{allowed}} (rule 2)',
      unknown:
        '{{file}} is not on the map (docs/architecture.md, Layout); add it there and to scripts/eslint/layers.js',
      notReexport: 'src/index.ts is the root export: re-exports only, no logic (Layout)',
      staleException:
        'exception "{{from}} -> {{to}}" ({{why}}) matches no refused import any more: remove it from scripts/eslint/layers.js',
    },
  },
  create(context) {
    const options = context.options[0] ?? {};
    const srcRoot = join(ROOT, 'src');
    const fromRel = srcRelative(srcRoot, context.filename);
    if (fromRel === undefined) return {};
    const layer = layerOf(fromRel);
    if ((layer === '' && fromRel !== 'index.ts') || LAYERS[layer] === undefined) {
      return {
        Program: (node) =>
          context.report({ node, messageId: 'unknown', data: { file: `src/${fromRel}` } }),
      };
    }
    const exceptions = (options.exceptions ?? IMPORT_EXCEPTIONS).filter((e) => e.from === fromRel);
    const used = new Set();
    const visitors = moduleReferences((ref) => {
      const pkg = packageOf(ref.specifier);
      const target = pkg === undefined ? importTarget(srcRoot, fromRel, ref.specifier) : undefined;
      const problem =
        pkg !== undefined
          ? packageRefusal(layer, pkg)
          : target !== undefined
            ? refusal(fromRel, target, ref)
            : undefined;
      if (problem === undefined) return;
      const exception = exceptions.find((e) => e.to === target);
      if (exception !== undefined) used.add(exception);
      else context.report({ node: ref.node, ...problem });
    });
    return {
      ...visitors,
      Program: (node) => {
        if (fromRel !== 'index.ts') return;
        for (const statement of node.body) {
          const reexport =
            REEXPORT.has(statement.type) &&
            !(statement.type === 'ExportNamedDeclaration' && statement.declaration);
          if (!reexport) context.report({ node: statement, messageId: 'notReexport' });
        }
      },
      'Program:exit': (node) => {
        for (const e of exceptions) {
          if (!used.has(e)) context.report({ node, messageId: 'staleException', data: e });
        }
      },
    };
  },
};
