export const LIMIT_RESETS = ['daily', 'weekly', 'monthly', 'never'] as const;
export type LimitReset = (typeof LIMIT_RESETS)[number];

export type ApiKeyCreated = {
  readonly type: 'ApiKeyCreated';
  readonly data: {
    readonly keyId: string;
    readonly accountId: string;
    readonly name: string;
    /** SHA-256 (hex) of the whole secret. The secret itself is never stored. */
    readonly hash: string;
    /** A recognisable, non-secret label: the prefix and the last characters, e.g. `sk-sy-v1-…x7Qa`. */
    readonly hint: string;
    /** Spending limit in nano-dollars per window, or null for none. */
    readonly limit: number | null;
    readonly limitReset: LimitReset;
    readonly expiresAt: string | null;
    readonly at: string;
  };
};
export type ApiKeyRenamed = { readonly type: 'ApiKeyRenamed'; readonly data: { readonly keyId: string; readonly name: string; readonly at: string } };
export type ApiKeyLimitChanged = {
  readonly type: 'ApiKeyLimitChanged';
  readonly data: { readonly keyId: string; readonly limit: number | null; readonly limitReset: LimitReset; readonly at: string };
};
export type ApiKeyExpiryChanged = {
  readonly type: 'ApiKeyExpiryChanged';
  /** The new expiry (ISO), or null: the key never expires. */
  readonly data: { readonly keyId: string; readonly expiresAt: string | null; readonly at: string };
};
export type ApiKeyDisabled = { readonly type: 'ApiKeyDisabled'; readonly data: { readonly keyId: string; readonly at: string } };
export type ApiKeyEnabled = { readonly type: 'ApiKeyEnabled'; readonly data: { readonly keyId: string; readonly at: string } };
export type ApiKeyRevoked = { readonly type: 'ApiKeyRevoked'; readonly data: { readonly keyId: string; readonly at: string } };

export type ApiKeyEvent = ApiKeyCreated | ApiKeyRenamed | ApiKeyLimitChanged | ApiKeyExpiryChanged | ApiKeyDisabled | ApiKeyEnabled | ApiKeyRevoked;

export const apiKeyStream = (keyId: string): string => `apikey-${keyId}`;
