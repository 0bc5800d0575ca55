import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

// `npm test` runs on the embedded stores only, whatever the shell says: with these variables, the app-level tests
// (and the CLIs they spawn with the inherited environment, e.g. a projections rebuild) would write to, or wipe the
// read models of, the stores they name. Workers are forked with this process's environment, so removing the variables
// here hides them from every test. `npm run test:contract` (vitest.contract.config.ts) runs the store contract suites
// against them instead.
const ignored = ['EVENTSTORE_URL', 'MONGODB_URL'].filter((name) => process.env[name]);
for (const name of ignored) delete process.env[name];
if (ignored.length > 0) {
  console.warn(
    `npm test ignores ${ignored.join(' and ')}: every test runs on the embedded stores. ` +
      'Run the store contract suites against those servers with npm run test:contract.',
  );
}

export default defineConfig({
  resolve: {
    // Node loads graphql's CommonJS build for the libraries (yoga, Pothos); make our own imports use the same one,
    // or graphql sees two realms ("Cannot use GraphQLObjectType from another module or realm").
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/consoleBuild.globalSetup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // expect.poll's default deadline (1 s) is a race on a loaded CI host: a poll waits for its condition, and the
    // deadline only turns a hang into a failure (test/support/eventually.ts).
    expect: { poll: { timeout: 15_000 } },
    pool: 'forks',
  },
});
