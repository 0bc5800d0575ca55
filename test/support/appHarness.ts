import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config.js';
import { startSwitchyard } from '../../src/main.js';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef0123456789';

export interface Harness {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly running: Awaited<ReturnType<typeof startSwitchyard>>;
  /** POST a GraphQL operation; returns the HTTP status and the parsed body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary GraphQL results
  gql(query: string, variables?: Record<string, unknown>, key?: string | null): Promise<{ status: number; body: any }>;
  stop(options?: { keepData?: boolean }): Promise<void>;
}

/** Start the whole app on a free port over a fresh temporary data directory (the embedded stores). */
export const startHarness = async (
  env: Record<string, string> = {},
  dataDir?: string,
  options: Omit<NonNullable<Parameters<typeof startSwitchyard>[1]>, 'log'> = {},
): Promise<Harness> => {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'switchyard-'));
  // Fake upstreams listen on 127.0.0.1, which the outbound address policy refuses unless allowed. The load balancing's
  // random draw is off, so that a test knows which endpoint a call goes to first (test/e2e/loadBalancing turns it on).
  const config: Config = loadConfig({ PORT: '0', DATA_DIR: dir, LOG_LEVEL: 'silent', ADMIN_API_KEY: ADMIN_KEY, EVENTSTORE_SYNC: 'normal', OUTBOUND_ALLOW: '127.0.0.1', ROUTING_LOAD_BALANCING: 'off', ...env });
  const running = await startSwitchyard(config, { ...options, log: () => undefined });
  const url = `http://127.0.0.1:${running.port}`;
  return {
    url,
    port: running.port,
    dataDir: dir,
    running,
    async gql(query, variables, key = ADMIN_KEY) {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return { status: res.status, body: (await res.json()) as any };
    },
    async stop(options) {
      await running.stop();
      if (!options?.keepData && !dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
};
