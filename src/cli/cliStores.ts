import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { EventStore } from '../eventStore/eventStore.js';
import { EVENTS_FILE } from '../eventStore/sqliteEventStore.js';
import type { ReadStore } from '../readStore/readStore.js';
import { openStores } from '../stores.js';

/**
 * The stores an operator's command (the audit, the projections rebuild) works on, from the environment as the server
 * reads it. Each failure is one line and an exit: a bad variable or a DATA_DIR with no event log (a mistyped path,
 * which would otherwise be created empty and "rebuilt" or "audited" with success) exits 78, as the server does; a
 * store in use or out of reach exits 1.
 */
export const openCliStores = async (): Promise<{ config: Config; eventStore: EventStore; readStore: ReadStore }> => {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(78);
  }
  if (!config.EVENTSTORE_URL && !existsSync(join(config.DATA_DIR, EVENTS_FILE))) {
    console.error(`DATA_DIR (${config.DATA_DIR}) holds no event log (${EVENTS_FILE}): set DATA_DIR to the server's data directory`);
    process.exit(78);
  }
  const stores = await openStores(config).catch((error: unknown) => {
    // A clear line, not a stack trace: the usual cause is a server still running on the same DATA_DIR.
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(error instanceof ConfigError ? 78 : 1);
  });
  return { config, ...stores };
};

/**
 * The command's options, parsed strictly (node:util parseArgs): `--help` prints the usage and exits 0; an unknown
 * option, a positional argument or an option without its value prints why and the usage, and exits 2.
 */
export const cliOptions = <T extends Record<string, { type: 'string' | 'boolean' }>>(usage: string, options: T, args: readonly string[] = process.argv.slice(2)) => {
  let parsed: { values: Record<string, string | boolean | undefined> };
  try {
    parsed = parseArgs({ args: [...args], options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: false });
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (parsed.values.help) {
    console.log(usage);
    process.exit(0);
  }
  return parsed.values as { [K in keyof T]?: T[K]['type'] extends 'string' ? string : boolean };
};
