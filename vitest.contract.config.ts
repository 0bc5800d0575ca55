import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

// `npm run test:contract`: the store contract suites only (test/contract), each port against the embedded adapter and,
// when EVENTSTORE_URL / MONGODB_URL are set, against those servers. They write only to streams and databases of their
// own (random stream categories; MongoDB databases switchyard_test_*, dropped after each test). Nothing else runs here:
// the app-level tests stay on the embedded stores (vitest.config.ts).
const require = createRequire(import.meta.url);
const withoutCredentials = (url: string): string => url.replace(/\/\/[^@/]*@/, '//…@');
for (const [name, adapter] of [
  ['EVENTSTORE_URL', 'EventStoreDB'],
  ['MONGODB_URL', 'MongoDB'],
] as const) {
  const url = process.env[name];
  console.warn(url ? `test:contract: the ${adapter} adapter runs against ${withoutCredentials(url)}` : `test:contract: the ${adapter} adapter is skipped: ${name} is not set`);
}

export default defineConfig({
  resolve: { alias: { graphql: require.resolve('graphql') } },
  test: {
    include: ['test/contract/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
