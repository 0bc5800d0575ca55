/**
 * "Sign in with Switchyard" (OpenRouter's OAuth PKCE flow): a user signed in to the console lets an app have a key on
 * their account. The console's consent grants a one-time code, bound to the app's callback URL and its PKCE code
 * challenge (RFC 7636); the app exchanges the code and its code verifier at `POST /api/v1/auth/keys` for a new key.
 *
 * One stream per code, named by the code's SHA-256: the code itself, a credential until exchanged, is never stored.
 */
export const CODE_CHALLENGE_METHODS = ['S256', 'plain'] as const;
export type CodeChallengeMethod = (typeof CODE_CHALLENGE_METHODS)[number];

export type AppAuthorizationGranted = {
  readonly type: 'AppAuthorizationGranted';
  readonly data: {
    /** SHA-256 (hex) of the code. */
    readonly codeHash: string;
    readonly accountId: string;
    /**
     * The key that gave the consent (null: the environment's ADMIN_API_KEY). The exchange is refused once that key is
     * refused (revoked, disabled, expired) or limited. Absent from grants recorded before it was kept.
     */
    readonly grantingKeyId?: string | null;
    /** Where the console sent the code (the app's callback URL, as checked). */
    readonly callbackUrl: string;
    readonly codeChallenge: string;
    readonly codeChallengeMethod: CodeChallengeMethod;
    /** The key the exchange creates: its name and spending limit (nano-dollars, null for none). */
    readonly keyName: string;
    readonly limit: number | null;
    /** The code is refused after this moment. */
    readonly expiresAt: string;
    readonly at: string;
  };
};

export type AppAuthorizationExchanged = {
  readonly type: 'AppAuthorizationExchanged';
  /** The key created for the app (the exchange is recorded first, so a code never yields two keys). */
  readonly data: { readonly codeHash: string; readonly keyId: string; readonly at: string };
};

export type AppAuthorizationEvent = AppAuthorizationGranted | AppAuthorizationExchanged;

export const APP_AUTHORIZATION_CATEGORY = 'appauth';
export const appAuthorizationStream = (codeHash: string): string => `${APP_AUTHORIZATION_CATEGORY}-${codeHash}`;
