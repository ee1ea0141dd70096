// ESLint flat config: typescript-eslint, node: imports, no-console, and the dependency rules of
// docs/architecture.md (local rules meshwork/layers and meshwork/no-cycle, scripts/eslint/).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';
import meshwork from './scripts/eslint/index.js';

// Built-ins must be imported as `node:x` (undici's rule): every bare builtin name is restricted.
const bareBuiltins = builtinModules
  .filter((m) => !m.startsWith('_'))
  .map((name) => ({ name, message: `import "node:${name}" instead` }));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bin/', '.meshwork/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    plugins: { meshwork },
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      'no-console': 'error',
      'no-restricted-imports': ['error', { paths: bareBuiltins }],
      'meshwork/layers': 'error',
      'meshwork/no-cycle': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*', 'examples/**/*.ts', '*.js'],
    rules: { 'no-console': 'off' },
  },
);
