// Builds the dashboard (src/ui/app, Preact) into dist/ui/app, which the agent serves at /ui/
// (src/ui/serve.ts). Run by `npm run build` after tsc; docs/ui.md says why Preact and Vite.
import { fileURLToPath } from 'node:url';

export default {
  root: fileURLToPath(new URL('./src/ui/app/', import.meta.url)),
  base: '/ui/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('./dist/ui/app/', import.meta.url)),
    emptyOutDir: true,
    // Every asset is a file the agent serves (its CSP allows no inline data: scripts).
    assetsInlineLimit: 0,
    target: 'es2022',
  },
};
