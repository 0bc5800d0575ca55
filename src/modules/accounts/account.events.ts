export const ROLES = ['admin', 'provider', 'user', 'designer'] as const;
export type Role = (typeof ROLES)[number];

export type AccountOpened = {
  readonly type: 'AccountOpened';
  readonly data: { readonly accountId: string; readonly name: string; readonly email: string | null; readonly roles: readonly Role[]; readonly plan: string; readonly at: string };
};
export type RoleGranted = { readonly type: 'RoleGranted'; readonly data: { readonly accountId: string; readonly role: Role; readonly at: string } };
export type RoleRevoked = { readonly type: 'RoleRevoked'; readonly data: { readonly accountId: string; readonly role: Role; readonly at: string } };
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

export type AccountEvent = AccountOpened | RoleGranted | RoleRevoked | PlanChanged | ContentLoggingChanged | DefaultModelChanged | ProviderPreferencesChanged;

export const accountStream = (accountId: string): string => `account-${accountId}`;
