import { describe, expect, it } from 'vitest';
import { createSignupLimit, signupClient } from '../../src/modules/accounts/signupLimit.js';

describe('signupClient', () => {
  it('is an IPv4 address as it is, an IPv4-mapped one as its IPv4 address', () => {
    expect(signupClient('203.0.113.7')).toBe('203.0.113.7');
    expect(signupClient('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });
  it("is an IPv6 address's /64, however it is written", () => {
    expect(signupClient('2001:db8:0:1::5')).toBe('2001:db8:0:1::/64');
    expect(signupClient('2001:0db8:0000:0001:ffff:1:2:3')).toBe('2001:db8:0:1::/64');
    expect(signupClient('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(signupClient('::1')).toBe('0:0:0:0::/64');
  });
  it('is one shared client when the address is unknown', () => {
    expect(signupClient(null)).toBe('');
    expect(signupClient(undefined)).toBe('');
  });
});

describe('createSignupLimit', () => {
  it('admits perHour an hour per client, then RATE_LIMITED until the oldest is an hour old; a slot given back is free again', () => {
    const limit = createSignupLimit(2);
    limit.take('a', 0);
    limit.take('a', 1_000);
    expect(() => limit.take('a', 2_000)).toThrow(expect.objectContaining({ code: 'RATE_LIMITED', retryAfterMs: 3_598_000 }));
    limit.take('b', 2_000);
    limit.giveBack('a', 1_000);
    limit.take('a', 3_000);
    limit.take('a', 3_600_001);
  });
  it('admits without end with 0', () => {
    const limit = createSignupLimit(0);
    for (let i = 0; i < 100; i++) limit.take('a', i);
  });
});
