// Goal: the typed client cannot drift from the server. Its types (src/client/schema.ts) and its
// route list (src/client/routes.ts) are generated from the OpenAPI document the server builds;
// the committed files must be exactly what the generator makes from today's server, and the
// package must export the client as `allot/client`, built.
// Method: run the generator in memory (test/client/generate.ts: buildApp on in-memory SQLite,
// app.swagger(), openapi-typescript) and compare with the files; read package.json's exports and
// import the built module through the package's own name. On a mismatch: `npm run client:generate`.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateClientSources, generatedFiles } from './generate.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('the generated client', () => {
  it('is what the generator makes from the server today (else run `npm run client:generate`)', async () => {
    const sources = await generateClientSources();
    for (const file of generatedFiles) {
      const committed = readFileSync(join(root, file), 'utf8');
      expect(committed === sources[file], `${file} is stale: run \`npm run client:generate\``).toBe(true);
    }
  });

  it('is exported as allot/client, from the build', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(pkg.exports['./client']).toEqual({ types: './dist/client/index.d.ts', default: './dist/client/index.js' });
    expect(pkg.dependencies['openapi-fetch'], 'the client needs openapi-fetch at run time').toBeDefined();
    expect(existsSync(join(root, 'dist/client/index.js'))).toBe(true);
    const name = 'allot/client';
    const built = (await import(/* @vite-ignore */ name)) as Record<string, unknown>;
    expect(typeof built.createClient).toBe('function');
    expect(typeof built.AllotProblem).toBe('function');
    expect(typeof built.readModifyWrite).toBe('function');
  });
});
