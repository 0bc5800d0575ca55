/**
 * The call the BYOK suites price: 7 prompt and 3 completion tokens at these prices are 7 × 1,000 + 3 × 3,001 = 16,003
 * nano-dollars at list price; the 5% fee (BYOK_FEE_PERCENT's default) is 800.15, charged rounded up: 801.
 */
import type { FakeProvider } from './fakeProviders.js';

export const PRICES = { prompt: 1_000, completion: 3_001 };
export const USAGE = { promptTokens: 7, completionTokens: 3 };
export const LIST = 16_003;
export const FEE = 801;

/** The Authorization headers `fake` received while `run` ran, in order: whose key each upstream call carried. */
export const authorizationsDuring = async (fake: FakeProvider, run: () => Promise<unknown>): Promise<string[]> => {
  const before = fake.requests.length;
  await run();
  return fake.requests.slice(before).map((r) => r.headers.authorization ?? '');
};
