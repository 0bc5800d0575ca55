export const LIMIT_RESETS = ['daily', 'weekly', 'monthly', 'never'] as const;
export type LimitReset = (typeof LIMIT_RESETS)[number];

/**
 * What a key may call. An `inference` key calls models and GraphQL; a `management` key (OpenRouter's) calls only
 * `/api/v1/keys` and `/api/v1/activity`, never a model, so it can sit in a provisioning script without spending.
 */
export const KEY_KINDS = ['inference', 'management'] as const;
export type KeyKind = (typeof KEY_KINDS)[number];

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
    /** Absent in events written before management keys existed: those keys are inference keys. */
    readonly kind?: KeyKind;
    /** The list price of BYOK calls counts against the limit too (OpenRouter's include_byok_in_limit); absent: false. */
    readonly includeByokInLimit?: boolean;
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
export type ApiKeyByokInLimitChanged = {
  readonly type: 'ApiKeyByokInLimitChanged';
  readonly data: { readonly keyId: string; readonly includeByokInLimit: boolean; readonly at: string };
};
export type ApiKeyDisabled = { readonly type: 'ApiKeyDisabled'; readonly data: { readonly keyId: string; readonly at: string } };
export type ApiKeyEnabled = { readonly type: 'ApiKeyEnabled'; readonly data: { readonly keyId: string; readonly at: string } };
export type ApiKeyRevoked = { readonly type: 'ApiKeyRevoked'; readonly data: { readonly keyId: string; readonly at: string } };

export type ApiKeyEvent = ApiKeyCreated | ApiKeyRenamed | ApiKeyLimitChanged | ApiKeyByokInLimitChanged | ApiKeyExpiryChanged | ApiKeyDisabled | ApiKeyEnabled | ApiKeyRevoked;

export const API_KEY_CATEGORY = 'apikey';
export const apiKeyStream = (keyId: string): string => `${API_KEY_CATEGORY}-${keyId}`;

export const kindOfKey = (created: ApiKeyCreated['data']): KeyKind => created.kind ?? 'inference';
