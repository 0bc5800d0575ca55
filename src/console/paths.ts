import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository (or image) root: the nearest folder above this file holding package.json. The same walk works from
 * the sources (src/console/) and from the build (dist/src/console/), so both find the one bundle in dist/console/.
 */
const packageRoot = (): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`No package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
};

const root = packageRoot();

/** The console's sources (browser code, its own tsconfig). */
export const consoleSourceDir = join(root, 'src', 'console', 'app');
/** Where the bundle is written and served from: index.html, assets/<name>-<hash>.<ext>, manifest.json. */
export const consoleDistDir = join(root, 'dist', 'console');
