// Local ESLint rule `meshwork/layers`: the dependency arrows of docs/architecture.md.
// It resolves each relative import against the importing file, so `../../registry/x.js` from
// src/client/balancers/ is seen for what it is. No resolver package needed: every import inside
// src/ is relative (ESM, explicit .js), and bare specifiers are packages, which the rule ignores.
import { dirname, relative, resolve, sep } from 'node:path';

const EVERYTHING_BUT_TESTING = [
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
];

/** Which top-level folders of src/ each folder may import (besides itself). */
export const ALLOWED = {
  core: [],
  protocol: ['core'],
  // config/ loads and validates; the schemas are the components' own (options.ts).
  config: ['core', 'protocol'],
  // The agent's options (schema, defaults, env table); its runtime is composed in cli/.
  agent: ['core', 'protocol', 'config', 'dns'],
  telemetry: ['core'],
  registry: ['core', 'telemetry', 'protocol'],
  'registry-api': ['core', 'protocol', 'registry', 'telemetry', 'config'],
  dns: ['core', 'protocol', 'telemetry'],
  client: ['core', 'protocol'],
  proxy: ['core', 'protocol', 'client', 'telemetry', 'config'],
  gateway: ['core', 'protocol', 'proxy', 'client', 'telemetry', 'config'],
  sidecar: ['core', 'protocol', 'proxy', 'client', 'telemetry', 'config'],
  'control-plane': ['core', 'protocol', 'registry', 'telemetry', 'config'],
  ui: ['core', 'protocol'],
  testing: ['core', 'protocol', 'registry', 'client'],
  // The composition root, and src/index.ts (public types and factories): all but testing/.
  cli: EVERYTHING_BUT_TESTING,
  '': EVERYTHING_BUT_TESTING,
};

/** The top-level folder of src/ a path is in ('' for src/*.ts), or undefined outside src/. */
function layerOf(srcRoot, file) {
  const rel = relative(srcRoot, file);
  if (rel.startsWith('..') || rel === '') return undefined;
  const parts = rel.split(sep);
  return parts.length === 1 ? '' : parts[0];
}

export const layersRule = {
  meta: {
    type: 'problem',
    docs: { description: 'enforce the dependency directions of docs/architecture.md' },
    schema: [],
    messages: {
      forbidden: '{{from}}/ may not import {{to}}/ (allowed: {{allowed}}; docs/architecture.md)',
      unknown:
        'src/{{from}} is not a folder docs/architecture.md knows; add it to scripts/eslint/layers.js',
    },
  },
  create(context) {
    const file = context.filename;
    const srcRoot = resolve(context.cwd, 'src');
    const from = layerOf(srcRoot, file);
    if (from === undefined) return {};
    const check = (node, specifier) => {
      if (typeof specifier !== 'string' || !specifier.startsWith('.')) return;
      const to = layerOf(srcRoot, resolve(dirname(file), specifier));
      if (to === undefined || to === from) return;
      const allowed = ALLOWED[from];
      if (allowed === undefined) {
        context.report({ node, messageId: 'unknown', data: { from } });
        return;
      }
      if (!allowed.includes(to)) {
        context.report({
          node,
          messageId: 'forbidden',
          data: {
            from: from || 'src',
            to: to || 'src/index',
            allowed: allowed.join(', ') || 'nothing',
          },
        });
      }
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
    };
  },
};

export default { rules: { layers: layersRule } };
