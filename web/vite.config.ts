// Builds the dashboard into dist/web, which `allot serve` serves at `/`. Preact's JSX is
// compiled by Vite's own esbuild step, so no framework plugin is needed.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    // One small bundle: no chunk is fetched from anywhere but this server.
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
  // `npm run dev:web` proxies the API to a running `allot serve`.
  server: { proxy: { '/v1': 'http://127.0.0.1:7070' } },
});
