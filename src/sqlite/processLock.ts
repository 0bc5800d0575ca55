import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { UnavailableError } from '../errors.js';
import { PRIVATE_FILE_MODE } from './privateFiles.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * A lock file holding the owner's pid, for resources only one process may use (the embedded read store keeps its
 * documents in memory, so a second process would silently diverge). A lock left by a dead process is taken over.
 */
export const acquireProcessLock = (file: string, what: string): { release(): void } => {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: PRIVATE_FILE_MODE });
      return { release: () => rmSync(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(readFileSync(file, 'utf8').trim());
      if (owner === process.pid) return { release: () => undefined };
      if (Number.isInteger(owner) && owner > 0 && alive(owner)) {
        throw new UnavailableError(`${what} is in use by process ${owner}; stop it first (embedded mode serves one process)`, { lock: file });
      }
      rmSync(file, { force: true });
    }
  }
  throw new UnavailableError(`Could not lock ${what}`, { lock: file });
};
