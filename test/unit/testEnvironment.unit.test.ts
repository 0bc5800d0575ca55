import { describe, expect, it } from 'vitest';

/**
 * `npm test` includes destructive app-level tests (a projections rebuild, crash and restart runs). Whatever the shell
 * exports, they must not see the production stores' addresses: test/e2e/testSeparation.e2e.test.ts runs this file
 * with both variables set.
 */
describe('the npm test environment', () => {
  it('hides EVENTSTORE_URL and MONGODB_URL from every test', () => {
    expect(process.env['EVENTSTORE_URL']).toBeUndefined();
    expect(process.env['MONGODB_URL']).toBeUndefined();
  });
});
