import { isIPv6 } from 'node:net';
import { RateLimitedError } from '../../errors.js';
import { createRateWindow } from '../../rateWindow.js';

const HOUR_MS = 3_600_000;

/**
 * The client an anonymous signup is counted against: its IPv4 address, or its IPv6 address's /64 (one host or LAN
 * holds a whole /64, so counting full IPv6 addresses would let it change address at will). An IPv4-mapped IPv6 address
 * (`::ffff:1.2.3.4`, a dual-stack socket's) is its IPv4 address. The socket's remote address: there is no trusted
 * proxy setting, so behind a reverse proxy every client is the proxy's address and shares one allowance.
 */
export const signupClient = (remoteAddress: string | null | undefined): string => {
  const address = (remoteAddress ?? '').replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = address.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
};

/**
 * Anonymous account opening (SELF_SIGNUP): at most `perHour` per client (signupClient) in any hour, counted in this
 * process's memory; 0 for no limit. The free plan's quotas are per account, so each signup is fresh free use.
 */
export const createSignupLimit = (perHour: number) => {
  const window = perHour > 0 ? createRateWindow(perHour, HOUR_MS) : null;
  return {
    /** Takes the client's slot for a signup at `at` (give it back if the account is not written), or RATE_LIMITED. */
    take(client: string, at: number): void {
      const slot = window?.take(client, at) ?? { taken: true };
      if (!slot.taken) {
        throw new RateLimitedError(
          `At most ${perHour} accounts an hour are opened without a key from one client address: try again in ${Math.ceil(slot.retryAfterMs / 60_000)} min, or ask an admin`,
          slot.retryAfterMs,
          { limit: perHour },
        );
      }
    },
    giveBack: (client: string, at: number): void => window?.giveBack(client, at),
  };
};
