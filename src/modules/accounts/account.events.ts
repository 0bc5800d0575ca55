export const ROLES = ['admin', 'provider', 'user', 'designer'] as const;
export type Role = (typeof ROLES)[number];

export type AccountOpened = {
  readonly type: 'AccountOpened';
  readonly data: { readonly accountId: string; readonly name: string; readonly email: string | null; readonly roles: readonly Role[]; readonly plan: string; readonly at: string };
};
/**
 * `rosterRevision`: of ADMIN, the admin roster's event that decided it (adminRoster.events.ts), so that two changes
 * decided there are recorded here in the roster's order, whichever arrives first. Absent: before the roster, or another role.
 */
export type RoleGranted = { readonly type: 'RoleGranted'; readonly data: { readonly accountId: string; readonly role: Role; readonly at: string; readonly rosterRevision?: number } };
export type RoleRevoked = { readonly type: 'RoleRevoked'; readonly data: { readonly accountId: string; readonly role: Role; readonly at: string; readonly rosterRevision?: number } };
export type PlanChanged = { readonly type: 'PlanChanged'; readonly data: { readonly accountId: string; readonly plan: string; readonly at: string } };

/** Input & output logging: while on, the account's generations keep what they were sent and answered (the content store). */
export type ContentLoggingChanged = { readonly type: 'ContentLoggingChanged'; readonly data: { readonly accountId: string; readonly enabled: boolean; readonly at: string } };

/** The model a chat request that names none is answered by (OpenRouter's account default model); null: none, such a request is refused. */
export type DefaultModelChanged = { readonly type: 'DefaultModelChanged'; readonly data: { readonly accountId: string; readonly model: string | null; readonly at: string } };

/**
 * The account's provider lists (OpenRouter's account-wide provider settings), as provider slugs: `ignore` is merged with a
 * request's `provider.ignore`; a non-empty `allow` admits only its providers (a request's `provider.only` narrows
 * within it). Empty: no such list.
 */
export interface AccountProviderPreferences {
  readonly ignore: readonly string[];
  readonly allow: readonly string[];
}

/** The account's provider lists changed; null: it has none (routing as a request alone asks). */
export type ProviderPreferencesChanged = {
  readonly type: 'ProviderPreferencesChanged';
  readonly data: { readonly accountId: string; readonly preferences: AccountProviderPreferences | null; readonly at: string };
};

/**
 * The account's own key for a provider (BYOK), sealed with the credential vault under `byokContext` (never in plain
 * text), and bound to `origin`: the scheme, host and port the provider's endpoints pointed at when the key was set.
 * It is never sent anywhere else. `hint`: its last characters, to recognise it.
 */
export interface ByokKey {
  readonly provider: string;
  readonly encrypted: string;
  readonly hint: string;
  readonly origin: string;
  /** When the key's endpoints fail (or cannot be used), the provider's own shared key may serve instead. */
  readonly fallbackToShared: boolean;
  readonly at: string;
}

/** Set or replaced (at most one key per provider). */
export type ByokKeySet = { readonly type: 'ByokKeySet'; readonly data: ByokKey & { readonly accountId: string } };
export type ByokKeyRemoved = { readonly type: 'ByokKeyRemoved'; readonly data: { readonly accountId: string; readonly provider: string; readonly at: string } };

/** The vault context (its AAD) a BYOK key is sealed under: it opens only for this account and provider. */
export const byokContext = (accountId: string, provider: string): string => `byok:${accountId}:${provider}`;

/** How many providers an account may hold a key for. */
export const MAX_BYOK_KEYS = 20;

export type AccountEvent =
  | AccountOpened
  | RoleGranted
  | RoleRevoked
  | PlanChanged
  | ContentLoggingChanged
  | DefaultModelChanged
  | ProviderPreferencesChanged
  | ByokKeySet
  | ByokKeyRemoved;

export const accountStream = (accountId: string): string => `account-${accountId}`;
