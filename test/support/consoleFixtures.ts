import type { UsageDoc } from '../../projections/usageDaily.js';
import type { Harness } from './appHarness.js';

/**
 * 30 days × 20 models of usage (the size for the Activity page), written straight into the usage read model:
 * the page reads only that model, and making 600 day-model rows through generations would take minutes.
 */
export const seedUsage = async (h: Harness, accountId: string, keyId: string) => {
  const usage = h.running.core.readStore.collection<UsageDoc>('usageDaily');
  const providers = ['acme', 'globex', 'initech', 'umbrella'];
  for (let d = 1; d <= 30; d++) {
    const day = new Date(Date.now() - d * 86_400_000).toISOString().slice(0, 10);
    for (let m = 0; m < 20; m++) {
      const requests = 5 + ((d * 7 + m * 13) % 40);
      const [model, provider] = [`vendor${m % 5}/model-${m}`, providers[m % 4] ?? 'acme'];
      await usage.replaceOne({
        _id: [accountId, keyId, model, provider, day, '-'].join('|'),
        accountId,
        keyId,
        model,
        provider,
        workflowId: null,
        day,
        requests,
        promptTokens: requests * 300,
        completionTokens: requests * (120 + m * 10),
        reasoningTokens: 0,
        cachedTokens: 0,
        cost: requests * (20 - m) * 40_000 * (1 + (d % 5)),
      });
    }
  }
};
