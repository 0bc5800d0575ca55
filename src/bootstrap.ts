import type { Core } from './core.js';
import { ConflictError } from './errors.js';
import { accountDecider } from './modules/accounts/account.decider.js';
import { accountStream } from './modules/accounts/account.events.js';
import { apiKeyDecider } from './modules/apiKeys/apiKey.decider.js';
import { apiKeyStream } from './modules/apiKeys/apiKey.events.js';
import { generateApiKey } from './modules/apiKeys/keyFormat.js';
import { newId } from './ids.js';
import { ROOT_ACCOUNT_ID } from './modules/auth/principal.js';

/**
 * Make sure the root admin account exists. Without ADMIN_API_KEY, give it a generated key the first time and
 * return that secret so the caller prints it once (it is never stored or shown again).
 */
export const bootstrapAdmin = async (core: Core): Promise<{ generatedKey: string | null }> => {
  const actor = { actor: 'system:bootstrap', correlationId: 'bootstrap' };
  const at = core.now().toISOString();
  if (!core.directory.account(ROOT_ACCOUNT_ID)) {
    try {
      await core.execute(
        accountStream(ROOT_ACCOUNT_ID),
        accountDecider,
        { type: 'OpenAccount', data: { accountId: ROOT_ACCOUNT_ID, name: 'Root admin', email: null, roles: ['admin'], plan: 'free', at } },
        actor,
      );
    } catch (error) {
      // Another process opened it first: fine.
      if (!(error instanceof ConflictError)) throw error;
    }
  }
  // Its role comes from configuration, and the API refuses to revoke it; one an earlier version let be revoked is given
  // back, so the account says what its key can do.
  if (core.directory.account(ROOT_ACCOUNT_ID)?.roles.has('admin') === false) {
    await core.execute(accountStream(ROOT_ACCOUNT_ID), accountDecider, { type: 'GrantRole', data: { accountId: ROOT_ACCOUNT_ID, role: 'admin', at } }, actor);
  }
  if (core.config.ADMIN_API_KEY || core.directory.hasLiveKey(ROOT_ACCOUNT_ID)) return { generatedKey: null };
  const keyId = newId('key');
  const { secret, hash, hint } = generateApiKey();
  await core.execute(
    apiKeyStream(keyId),
    apiKeyDecider,
    { type: 'CreateApiKey', data: { keyId, accountId: ROOT_ACCOUNT_ID, name: 'bootstrap admin', hash, hint, limit: null, limitReset: 'never', expiresAt: null, at } },
    actor,
  );
  return { generatedKey: secret };
};
