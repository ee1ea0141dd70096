// ESLint flat config: typescript-eslint, node: imports, no-console, and the dependency-direction
// rules of docs/architecture.md expressed as import-x/no-restricted-paths zones.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import { builtinModules } from 'node:module';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

// Built-ins must be imported as `node:x` (undici's rule): every bare builtin name is restricted.
const bareBuiltins = builtinModules
  .filter((m) => !m.startsWith('_'))
  .map((name) => ({ name, message: `import "node:${name}" instead` }));

const all = [
  'core',
  'protocol',
  'config',
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
  'cli',
  'testing',
];
const except = (...allowed) => all.filter((d) => !allowed.includes(d)).map((d) => `./src/${d}`);

/** target may import only from `allowed` (and itself). */
const zone = (target, ...allowed) => ({
  target: `./src/${target}`,
  from: except(target, ...allowed),
  message: `${target}/ may import only ${allowed.join(', ') || 'nothing else'} (docs/architecture.md)`,
});

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bin/', '.meshwork/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { 'import-x': importX },
    // Resolves `./x.js` specifiers to the `.ts` sources, so path rules see real files.
    settings: {
      'import-x/resolver-next': [
        createTypeScriptImportResolver({ project: './tsconfig.check.json' }),
      ],
    },
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      'no-console': 'error',
      'no-restricted-imports': ['error', { paths: bareBuiltins }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            zone('core'),
            zone('protocol', 'core'),
            zone('config', 'core', 'protocol'),
            zone('telemetry', 'core'),
            zone('registry', 'core', 'telemetry', 'protocol'),
            zone('registry-api', 'core', 'protocol', 'registry', 'telemetry', 'config'),
            zone('dns', 'core', 'protocol', 'telemetry', 'config'),
            zone('client', 'core', 'protocol'),
            zone('proxy', 'core', 'protocol', 'client', 'telemetry', 'config'),
            zone('gateway', 'core', 'protocol', 'proxy', 'client', 'telemetry', 'config'),
            zone('sidecar', 'core', 'protocol', 'proxy', 'client', 'telemetry', 'config'),
            zone('control-plane', 'core', 'protocol', 'registry', 'telemetry', 'config'),
            zone('ui', 'core', 'protocol'),
            zone('testing', 'core', 'protocol', 'registry', 'client'),
            // Nothing imports cli/ (it is the only composition root) and src/ never imports testing/.
            { target: './src', from: './src/cli', message: 'nothing imports cli/' },
            {
              target: ['./src/!(testing)/**/*', './src/*.ts'],
              from: './src/testing',
              message: 'src/ never imports testing/',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli/**/*.ts'],
    rules: { 'import-x/no-restricted-paths': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*', '*.js'],
    rules: { 'no-console': 'off' },
  },
);
