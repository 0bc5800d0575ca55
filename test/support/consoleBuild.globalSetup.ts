import { buildConsole } from '../../src/console/build.js';

/** `npm test` on a fresh clone serves the console like `npm start` does: bundle it first when missing or stale. */
export default async function setup(): Promise<void> {
  await buildConsole({ ifStale: true });
}
