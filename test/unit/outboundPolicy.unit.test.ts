import fc from 'fast-check';
import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { createOutboundPolicy, OutboundRefusedError, parseOutboundAllow, type Resolver } from '../../src/modules/outbound/outboundPolicy.js';

/** A resolver over a fixed table: no network in unit tests. */
const resolverOf =
  (table: Record<string, string[]>): Resolver =>
  async (hostname) => {
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

const policy = createOutboundPolicy({
  resolve: resolverOf({
    'localhost': ['127.0.0.1', '::1'],
    'public.test': ['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946'],
    'rebind.test': ['93.184.216.34', '10.0.0.7'],
    'metadata.test': ['169.254.169.254'],
    'empty.test': [],
  }),
});

const REFUSED: Record<string, RegExp> = {
  // IPv4
  '127.0.0.1': /loopback/,
  '127.255.255.254': /loopback/,
  '0.0.0.0': /unspecified/,
  '0.1.2.3': /unspecified/,
  '10.1.2.3': /private/,
  '172.16.0.1': /private/,
  '172.31.255.255': /private/,
  '192.168.1.1': /private/,
  '169.254.169.254': /metadata/,
  '169.254.1.1': /link-local/,
  '100.64.0.1': /carrier-grade NAT/,
  '100.127.255.255': /carrier-grade NAT/,
  '100.100.100.200': /metadata/,
  '224.0.0.1': /multicast/,
  '255.255.255.255': /broadcast/,
  '192.0.2.1': /documentation/,
  '198.51.100.7': /documentation/,
  '203.0.113.9': /documentation/,
  '192.0.0.8': /reserved/,
  '198.18.0.1': /reserved/,
  '240.0.0.1': /reserved/,
  // IPv6
  '::1': /loopback/,
  '::': /unspecified/,
  'fe80::1': /link-local/,
  'fc00::1': /unique-local/,
  'fd12:3456::1': /unique-local/,
  'fd00:ec2::254': /metadata/,
  'fec0::1': /site-local/,
  'ff02::1': /multicast/,
  '2001:db8::1': /documentation/,
  '2001::1': /Teredo/,
  '100::1': /discard/,
  '::7f00:1': /outside IPv6 global unicast/,
  // IPv4 inside IPv6: mapped, translated (RFC 6145), NAT64 (RFC 6052), 6to4
  '::ffff:127.0.0.1': /loopback/,
  '::ffff:7f00:1': /loopback/,
  '::ffff:10.0.0.1': /private/,
  '::ffff:169.254.169.254': /metadata/,
  '::ffff:0:7f00:1': /loopback/,
  '64:ff9b::7f00:1': /loopback/,
  '64:ff9b::10.0.0.1': /private/,
  '64:ff9b:1::1': /local-use NAT64/,
  '2002:7f00:1::1': /loopback/,
  '2002:a9fe:a9fe::': /metadata/,
};

const ALLOWED = ['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '100.128.0.1', '11.0.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'];

describe('the outbound address policy: addresses', () => {
  it.each(Object.entries(REFUSED))('refuses %s', (address, reason) => {
    const refusal = policy.checkAddress(address);
    expect(refusal?.reason).toMatch(reason);
    expect(refusal?.message).toMatch(/not allowed by the outbound address policy \(OUTBOUND_ALLOW\)/);
  });

  it.each(ALLOWED)('lets public unicast %s through', (address) => {
    expect(policy.checkAddress(address)).toBeNull();
  });

  it('names both forms of an IPv4 address written as IPv6', () => {
    expect(policy.checkAddress('::ffff:7f00:1')!.message).toMatch(/^::ffff:7f00:1 \(127\.0\.0\.1\) is a loopback address/);
  });

  const octet = fc.integer({ min: 0, max: 255 });
  const inRange = (first: number, secondMin: number, secondMax: number) =>
    fc.tuple(fc.constant(first), fc.integer({ min: secondMin, max: secondMax }), octet, octet);
  const nonPublicV4 = fc.oneof(inRange(10, 0, 255), inRange(127, 0, 255), inRange(172, 16, 31), inRange(192, 168, 168), inRange(169, 254, 254), inRange(100, 64, 127));
  const hex = (a: number, b: number) => ((a << 8) | b).toString(16);

  it('refuses every private, loopback, link-local and CGNAT IPv4 address in each of its IPv6 disguises', () => {
    fc.assert(
      fc.property(nonPublicV4, ([a, b, c, d]) => {
        const dotted = `${a}.${b}.${c}.${d}`;
        for (const form of [dotted, `::ffff:${dotted}`, `::ffff:${hex(a, b)}:${hex(c, d)}`, `64:ff9b::${dotted}`, `2002:${hex(a, b)}:${hex(c, d)}::1`, `::ffff:0:${dotted}`]) {
          expect(policy.checkAddress(form), form).not.toBeNull();
        }
      }),
    );
  });
});

describe('the outbound address policy: URLs and names', () => {
  it('refuses URLs whose host is, or resolves to, a non-public address', async () => {
    expect((await policy.checkUrl('http://127.0.0.1:8080/v1'))?.reason).toMatch(/loopback/);
    expect((await policy.checkUrl('http://[::1]/v1'))?.reason).toMatch(/loopback/);
    expect((await policy.checkUrl('http://[::ffff:127.0.0.1]/'))?.reason).toMatch(/loopback/);
    expect((await policy.checkUrl('http://169.254.169.254/latest/meta-data/'))?.reason).toMatch(/metadata/);
    // The URL parser reads these as 127.0.0.1 before the policy sees them.
    expect((await policy.checkUrl('http://2130706433/'))?.reason).toMatch(/loopback/);
    expect((await policy.checkUrl('http://0x7f.1/'))?.reason).toMatch(/loopback/);
    expect((await policy.checkUrl('http://localhost:11434/v1'))?.message).toMatch(/^localhost resolves to 127\.0\.0\.1, which is a loopback address/);
    expect((await policy.checkUrl('http://LOCALHOST./v1'))?.reason).toMatch(/loopback/);
    expect((await policy.checkUrl('http://metadata.test/'))?.reason).toMatch(/metadata/);
  });

  it('refuses a name when any of its addresses is refused, and names that do not resolve', async () => {
    expect((await policy.checkUrl('https://rebind.test/v1'))?.message).toMatch(/rebind\.test resolves to 10\.0\.0\.7, which is a private address/);
    expect((await policy.checkUrl('https://nowhere.test/v1'))?.message).toBe('nowhere.test does not resolve (ENOTFOUND)');
    expect((await policy.checkUrl('https://empty.test/v1'))?.reason).toBe('does not resolve');
  });

  it('accepts public hosts, and refuses what is not an http(s) URL', async () => {
    expect(await policy.checkUrl('https://public.test/v1')).toBeNull();
    expect(await policy.checkUrl('https://8.8.8.8/v1')).toBeNull();
    expect((await policy.checkUrl('file:///etc/passwd'))?.reason).toBe('not http(s)');
    expect((await policy.checkUrl('not a url'))?.reason).toBe('not a URL');
  });

  it('checkUrlStatically judges the scheme and IP-literal hosts as checkUrl does, and leaves names alone (no lookup)', () => {
    const unresolving = createOutboundPolicy({
      allow: parseOutboundAllow('10.9.0.0/16'),
      resolve: () => {
        throw new Error('checkUrlStatically must not resolve names');
      },
    });
    expect(unresolving.checkUrlStatically('http://169.254.169.254/latest')?.reason).toMatch(/metadata/);
    expect(unresolving.checkUrlStatically('http://[::ffff:127.0.0.1]/')?.reason).toMatch(/loopback/);
    expect(unresolving.checkUrlStatically('http://0x7f.1/')?.reason).toMatch(/loopback/);
    expect(unresolving.checkUrlStatically('ftp://example.com/')?.reason).toBe('not http(s)');
    expect(unresolving.checkUrlStatically('not a url')?.reason).toBe('not a URL');
    expect(unresolving.checkUrlStatically('http://10.9.1.2/')).toBeNull();
    expect(unresolving.checkUrlStatically('https://8.8.8.8/v1')).toBeNull();
    expect(unresolving.checkUrlStatically('http://localhost:8080/')).toBeNull();
    expect(unresolving.checkUrlStatically('https://metadata.test/')).toBeNull();
  });

  it('checkHost throws a typed refusal for IP literals (node skips lookup for them)', async () => {
    await expect(policy.checkHost('127.0.0.1')).rejects.toBeInstanceOf(OutboundRefusedError);
    await expect(policy.checkHost('[::1]')).rejects.toThrow(/loopback/);
    await expect(policy.checkHost('8.8.8.8')).resolves.toBeUndefined();
  });
});

describe('the outbound address policy: lookup for node:http agents', () => {
  const lookup = (hostname: string, options: { all?: boolean; family?: number }) =>
    new Promise<{ error: NodeJS.ErrnoException | null; address: string | LookupAddress[]; family?: number }>((resolve) =>
      policy.lookup(hostname, options, (error, address, family) => resolve({ error, address, ...(family !== undefined && { family }) })),
    );

  it('answers like dns.lookup for a public name, in both calling styles', async () => {
    expect(await lookup('public.test', { family: 4 })).toEqual({ error: null, address: '93.184.216.34', family: 4 });
    expect(await lookup('public.test', { all: true })).toEqual({
      error: null,
      address: [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 },
      ],
    });
  });

  it('fails the connection with OutboundRefusedError when a name resolves to a refused address', async () => {
    const { error } = await lookup('rebind.test', { all: true });
    expect(error).toBeInstanceOf(OutboundRefusedError);
    expect(error!.message).toMatch(/10\.0\.0\.7, which is a private address/);
    expect((await lookup('localhost', {})).error).toBeInstanceOf(OutboundRefusedError);
    expect((await lookup('nowhere.test', {})).error?.code).toBe('ENOTFOUND');
  });
});

describe('OUTBOUND_ALLOW', () => {
  const allowing = (text: string) => createOutboundPolicy({ allow: parseOutboundAllow(text), resolve: resolverOf({ 'ollama.internal': ['10.1.2.3'], localhost: ['127.0.0.1', '::1'] }) });

  it('admits single addresses (in every form) and CIDR ranges, nothing next to them', () => {
    const p = allowing(' 127.0.0.1 , 10.0.0.0/8, fd00::/8, [::1]');
    expect(p.checkAddress('127.0.0.1')).toBeNull();
    expect(p.checkAddress('::ffff:127.0.0.1')).toBeNull();
    expect(p.checkAddress('127.0.0.2')).not.toBeNull();
    expect(p.checkAddress('10.200.0.1')).toBeNull();
    expect(p.checkAddress('11.0.0.1')).toBeNull(); // public anyway
    expect(p.checkAddress('172.16.0.1')).not.toBeNull();
    expect(p.checkAddress('fd00:ec2::254')).toBeNull();
    expect(p.checkAddress('::1')).toBeNull();
    expect(p.checkAddress('fe80::1')).not.toBeNull();
  });

  it('admits a host name whatever it resolves to; other names are still resolved and checked', async () => {
    const p = allowing('Ollama.Internal');
    expect(await p.checkUrl('http://ollama.internal:11434/v1')).toBeNull();
    expect(await p.checkUrl('http://localhost:11434/v1')).not.toBeNull();
    const answered = await new Promise<unknown>((resolve) => p.lookup('ollama.internal', { all: true }, (error, address) => resolve(error ?? address)));
    expect(answered).toEqual([{ address: '10.1.2.3', family: 4 }]);
  });

  it('refuses a name when only some of its addresses are allowed', async () => {
    expect((await allowing('127.0.0.1').checkUrl('http://localhost/'))?.message).toMatch(/localhost resolves to ::1/);
  });

  it('rejects entries that are neither host names, addresses nor ranges, naming them', () => {
    expect(parseOutboundAllow('')).toEqual({ hosts: new Set(), ranges: [] });
    expect(() => parseOutboundAllow('10.0.0.0/33')).toThrow('"10.0.0.0/33" is not a valid CIDR range');
    expect(() => parseOutboundAllow('999.1.1.1')).toThrow(/"999\.1\.1\.1" is neither/);
    expect(() => parseOutboundAllow('ollama.internal:11434')).toThrow(/neither a host name/);
    expect(() => parseOutboundAllow('a b')).toThrow(/neither a host name/);
  });
});
