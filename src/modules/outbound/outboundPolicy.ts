import { lookup as dnsLookup, promises as dnsPromises, type LookupAddress, type LookupOptions } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Where Switchyard may open connections on someone else's behalf (provider base URLs, workflow HTTP steps): public
 * unicast addresses only, unless the operator's allow-list (OUTBOUND_ALLOW) admits a host name or an address range.
 * Address classes come from ipaddr.js; names are resolved and every address they resolve to must pass, both when a
 * URL is registered (`checkUrl`) and on every connection (`lookup`, for node:http agents), so a name that resolves to
 * a private address later is still refused. Node skips `lookup` for IP-literal hosts: callers check those with
 * `checkHost` before connecting.
 */

type Ip = ipaddr.IPv4 | ipaddr.IPv6;

export interface OutboundAllowList {
  /** Host names (lower case, no trailing dot) admitted whatever they resolve to. */
  readonly hosts: ReadonlySet<string>;
  /** Address ranges admitted (a single address is a /32 or /128). */
  readonly ranges: readonly (readonly [Ip, number])[];
}

export const EMPTY_ALLOW_LIST: OutboundAllowList = { hosts: new Set(), ranges: [] };

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$/;

/** `OUTBOUND_ALLOW`: a comma list of host names, addresses and CIDRs. Throws naming the first bad entry. */
export const parseOutboundAllow = (text: string): OutboundAllowList => {
  const hosts = new Set<string>();
  const ranges: (readonly [Ip, number])[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
    if (entry === '') continue;
    if (entry.includes('/')) {
      if (!ipaddr.isValidCIDR(entry)) throw new Error(`"${raw.trim()}" is not a valid CIDR range`);
      const [address, bits] = ipaddr.parseCIDR(entry);
      ranges.push([address, bits]);
    } else if (ipaddr.isValid(entry) && isIP(entry) !== 0) {
      const address = ipaddr.process(entry);
      ranges.push([address, address.kind() === 'ipv4' ? 32 : 128]);
    } else if (!/^[\d.]+$/.test(entry) && HOST_NAME.test(entry.replace(/\.$/, ''))) {
      hosts.add(entry.replace(/\.$/, ''));
    } else {
      throw new Error(`"${raw.trim()}" is neither a host name, an IP address nor a CIDR range`);
    }
  }
  return { hosts, ranges };
};

/** Why an address is not public, in words; ipaddr.js range names otherwise. */
const RANGE_WORDS: Record<string, string> = {
  unspecified: 'an unspecified address',
  broadcast: 'the broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT address (100.64.0.0/10)',
  private: 'a private address (RFC 1918)',
  reserved: 'a reserved or documentation address',
  benchmarking: 'a benchmarking address',
  uniqueLocal: 'a unique-local address (fc00::/7)',
  deprecatedSiteLocal: 'a site-local address',
  teredo: 'a Teredo tunnel address',
  discard: 'a discard-only address',
};

/** Cloud metadata services: link-local or unique-local anyway, named so the refusal says what was at stake. */
const METADATA = new Set(['169.254.169.254', 'fd00:ec2::254', '100.100.100.200', 'fd20:ce::254']);

const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.parseCIDR('64:ff9b::/96');

const v4From = (bytes: readonly number[]): ipaddr.IPv4 => new ipaddr.IPv4(bytes.slice());

/** null when the address is public unicast; otherwise why not. IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is judged as IPv4. */
const whyNotPublic = (address: Ip): string | null => {
  if (METADATA.has(address.toNormalizedString()) || METADATA.has(address.toString())) return 'a cloud metadata address';
  if (address.kind() === 'ipv4') {
    const range = address.range();
    return range === 'unicast' ? null : (RANGE_WORDS[range] ?? `a special-purpose address (${range})`);
  }
  const v6 = address as ipaddr.IPv6;
  const range: string = v6.range();
  const bytes = v6.toByteArray();
  switch (range) {
    case 'ipv4Mapped':
    case 'rfc6145':
      return whyNotPublic(v4From(bytes.slice(12)));
    case 'rfc6052':
      // The well-known NAT64 prefix carries the IPv4 address in its last 32 bits; the local-use prefix may hold anything.
      return v6.match(NAT64_WELL_KNOWN) ? whyNotPublic(v4From(bytes.slice(12))) : 'a local-use NAT64 address';
    case '6to4':
      return whyNotPublic(v4From(bytes.slice(2, 6)));
    case 'unicast':
      return v6.match(GLOBAL_UNICAST_V6) ? null : 'an address outside IPv6 global unicast (2000::/3)';
    default:
      return RANGE_WORDS[range] ?? `a special-purpose address (${range})`;
  }
};

export interface OutboundRefusal {
  readonly host: string;
  /** The address refused, or null when the host could not be resolved. */
  readonly address: string | null;
  readonly reason: string;
  /** One sentence for people: `127.0.0.1 is a loopback address, not allowed by the outbound policy`. */
  readonly message: string;
}

/** A connection the outbound policy refused (what `lookup` hands to node:net, and `checkHost` throws). */
export class OutboundRefusedError extends Error {
  readonly code = 'EOUTBOUNDREFUSED';
  constructor(readonly refusal: OutboundRefusal) {
    super(refusal.message);
    this.name = 'OutboundRefusedError';
  }
}

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}

/** Every address a name resolves to (the system resolver by default; tests pass their own). */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

const lookupAll = (hostname: string): Promise<ResolvedAddress[]> =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))));

/** At most this many getaddrinfo calls at once: libuv's pool (four threads) keeps room for the rest of the process. */
const POOL_LOOKUPS = 2;

/**
 * The system resolver, kept off libuv's thread pool for names on the network. `dns.lookup` (getaddrinfo) runs on that
 * pool's four threads, which the process shares with file work and compression; the names resolved here are chosen
 * by providers and workflow designers, and a name whose DNS server never answers holds a pool thread for seconds per
 * lookup, so four of them stopped every other lookup and every file job of the process. Names are asked of the
 * system's DNS servers with c-ares first (on the event loop; `timeoutMs` per try, `tries` tries). A name DNS does not
 * know (the hosts file, search domains, mDNS) falls back to `dns.lookup`, at most POOL_LOOKUPS at a time; a name whose
 * server timed out does not, so a silent server costs the pool nothing.
 */
export const createSystemResolver = (options: { servers?: readonly string[]; timeoutMs?: number; tries?: number } = {}): Resolver => {
  const dns = new dnsPromises.Resolver({ timeout: options.timeoutMs ?? 2_500, tries: options.tries ?? 2 });
  if (options.servers) dns.setServers([...options.servers]);
  let inPool = 0;
  const queued: (() => void)[] = [];
  const fallback = async (hostname: string): Promise<ResolvedAddress[]> => {
    // A slot freed goes to the first caller waiting for one (the count stays), else back to the pool.
    if (inPool < POOL_LOOKUPS) inPool += 1;
    else await new Promise<void>((resolve) => queued.push(resolve));
    try {
      return await lookupAll(hostname);
    } finally {
      const next = queued.shift();
      if (next) next();
      else inPool -= 1;
    }
  };
  return async (hostname) => {
    const [v4, v6] = await Promise.allSettled([dns.resolve4(hostname), dns.resolve6(hostname)]);
    const addresses: ResolvedAddress[] = [
      ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
      ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
    ];
    if (addresses.length > 0) return addresses;
    const timedOut = [v4, v6].find((r): r is PromiseRejectedResult => r.status === 'rejected' && (r.reason as NodeJS.ErrnoException).code === 'ETIMEOUT');
    if (timedOut) throw timedOut.reason;
    return fallback(hostname);
  };
};

export interface OutboundPolicy {
  /** Why this IP address may not be contacted, or null when it may. */
  checkAddress(address: string, host?: string): OutboundRefusal | null;
  /** Resolve the URL's host (unless allowed by name) and check every address; null when all pass. */
  checkUrl(url: string): Promise<OutboundRefusal | null>;
  /**
   * What `checkUrl` can judge without resolving anything: the URL's form and scheme, and its host when that is an IP
   * address; null when those pass (a host name is judged when it is resolved).
   */
  checkUrlStatically(url: string): OutboundRefusal | null;
  /** Same for a bare host name or IP literal; throws OutboundRefusedError. Call before connecting to an IP literal. */
  checkHost(hostname: string): Promise<void>;
  /** A `dns.lookup` replacement for node:http agents: resolves, then fails with OutboundRefusedError if any address is refused. */
  readonly lookup: LookupFunction;
}

const bare = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '').toLowerCase();

export const createOutboundPolicy = (options: { allow?: OutboundAllowList; resolve?: Resolver } = {}): OutboundPolicy => {
  const allow = options.allow ?? EMPTY_ALLOW_LIST;
  const resolve = options.resolve ?? createSystemResolver();

  const checkAddress = (text: string, host: string = text): OutboundRefusal | null => {
    const literal = bare(text);
    if (!ipaddr.isValid(literal) || isIP(literal) === 0) {
      return { host, address: text, reason: 'not an IP address', message: `${text} is not an IP address` };
    }
    const address = ipaddr.process(literal);
    if (allow.ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits))) return null;
    const reason = whyNotPublic(address);
    if (reason === null) return null;
    const processed = address.toString();
    const shown = processed === literal ? processed : `${literal} (${processed})`;
    const subject = bare(host) === literal ? shown : `${host} resolves to ${shown}, which`;
    return { host, address: processed, reason, message: `${subject} is ${reason}, not allowed by the outbound address policy (OUTBOUND_ALLOW)` };
  };

  const checkName = async (hostname: string): Promise<OutboundRefusal | null> => {
    const host = bare(hostname);
    if (allow.hosts.has(host)) return null;
    if (isIP(host) !== 0) return checkAddress(host, hostname);
    let addresses: readonly ResolvedAddress[];
    try {
      addresses = await resolve(host);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      return { host: hostname, address: null, reason: 'does not resolve', message: `${hostname} does not resolve (${code})` };
    }
    if (addresses.length === 0) return { host: hostname, address: null, reason: 'does not resolve', message: `${hostname} does not resolve` };
    for (const { address } of addresses) {
      const refusal = checkAddress(address, hostname);
      if (refusal) return refusal;
    }
    return null;
  };

  const lookup: LookupFunction = (hostname, lookupOptions: LookupOptions, callback) => {
    const host = bare(hostname);
    const answer = (addresses: readonly ResolvedAddress[]) => {
      const wanted = lookupOptions.family === 4 || lookupOptions.family === 6 ? addresses.filter((a) => a.family === lookupOptions.family) : addresses;
      if (wanted.length === 0) {
        const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        error.code = 'ENOTFOUND';
        return callback(error, '');
      }
      if (lookupOptions.all) return callback(null, wanted.map((a): LookupAddress => ({ address: a.address, family: a.family })));
      return callback(null, wanted[0]!.address, wanted[0]!.family);
    };
    resolve(host).then(
      (addresses) => {
        if (!allow.hosts.has(host)) {
          for (const { address } of addresses) {
            const refusal = checkAddress(address, hostname);
            if (refusal) return callback(new OutboundRefusedError(refusal), '');
          }
        }
        answer(addresses);
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    );
  };

  /** The URL's host name, or why its form or scheme is refused. */
  const hostOf = (url: string): { hostname: string } | { refusal: OutboundRefusal } => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return { refusal: { host: url, address: null, reason: 'not a URL', message: `${url} is not a URL` } };
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      return { refusal: { host: parsed.host, address: null, reason: 'not http(s)', message: `${parsed.protocol} URLs are not allowed (http or https only)` } };
    }
    return { hostname: parsed.hostname };
  };

  return {
    checkAddress,
    async checkUrl(url) {
      const target = hostOf(url);
      return 'refusal' in target ? target.refusal : checkName(target.hostname);
    },
    checkUrlStatically(url) {
      const target = hostOf(url);
      if ('refusal' in target) return target.refusal;
      const host = bare(target.hostname);
      // Allowed host names are never IP literals (parseOutboundAllow keeps addresses as ranges, which checkAddress reads).
      return isIP(host) === 0 ? null : checkAddress(host, target.hostname);
    },
    async checkHost(hostname) {
      const refusal = await checkName(hostname);
      if (refusal) throw new OutboundRefusedError(refusal);
    },
    lookup,
  };
};

/**
 * node:http and node:https agents whose every new connection resolves its host through the policy's `lookup`: what
 * any outbound client (provider upstreams, workflow HTTP steps) connects with. IP-literal hosts skip `lookup`:
 * check them with `checkAddress` / `checkUrl` before the request.
 */
export const guardedAgents = (policy: Pick<OutboundPolicy, 'lookup'>, options: http.AgentOptions = {}) => ({
  'http:': new http.Agent({ ...options, lookup: policy.lookup }),
  'https:': new https.Agent({ ...options, lookup: policy.lookup }),
});
