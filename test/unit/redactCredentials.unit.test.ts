import { describe, expect, it } from 'vitest';
import { redactCredentials, redactProviderError } from '../../src/gateway/redactCredentials.js';
import { ProviderError } from '../../src/gateway/types.js';

const KEY = 'sk-USER-BYOK-SECRET-0042';

describe('redacting the credentials an upstream quotes back', () => {
  it('replaces each credential sent, as sent or percent-encoded, with its last four characters', () => {
    expect(redactCredentials(`Incorrect API key provided: Bearer ${KEY}`, [KEY])).toBe('Incorrect API key provided: Bearer …0042');
    expect(redactCredentials('token a b/c+d=e&f=0123 refused', ['a b/c+d=e&f=0123'])).toBe('token …0123 refused');
    expect(redactCredentials('GET /v1?key=a%20b%2Fc%2Bd%3De%26f%3D0123 refused', ['a b/c+d=e&f=0123'])).toBe('GET /v1?key=…0123 refused');
  });

  it('leaves values too short to be secrets alone, and takes out key-shaped words whoever sent them', () => {
    expect(redactCredentials('ollama: model llama3 not found', ['ollama'])).toBe('ollama: model llama3 not found');
    expect(redactCredentials('bearer abcdefgh12345678 and sk-ant-api03-abcdefghijklmnop, AIzaSyA0123456789abcdefghijklmnopqrstu', [])).toBe('bearer …5678 and …mnop, …rstu');
    // Words that merely contain "sk-" are not keys.
    expect(redactCredentials('task-0123456789abcdefghij and desk-lamp', [])).toBe('task-0123456789abcdefghij and desk-lamp');
  });

  it('returns the same error when there is nothing to take out, and a redacted copy otherwise', () => {
    const plain = new ProviderError({ code: 'bad_request', status: 400, retryable: false, message: 'x 400 bad_request: no', upstreamMessage: 'no', provider: 'x' });
    expect(redactProviderError(plain, [KEY])).toBe(plain);
    const quoting = new ProviderError({ code: 'auth', status: 401, retryable: false, message: `x 401 auth: bad ${KEY}`, upstreamMessage: `bad ${KEY}`, upstreamCode: KEY, provider: 'x', retryAfterMs: 5 });
    const redacted = redactProviderError(quoting, [KEY]);
    expect({ ...redacted, message: redacted.message }).toEqual({ ...quoting, message: 'x 401 auth: bad …0042', upstreamMessage: 'bad …0042', upstreamCode: '…0042' });
  });
});
