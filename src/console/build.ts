import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { consoleDistDir, consoleSourceDir } from './paths.js';

/**
 * Bundles the console (Preact + uPlot, TypeScript) with esbuild into dist/console/: content-hashed assets (served
 * immutable) and an index.html that names them (served no-cache). No inline script or style, so the page runs under
 * a strict Content-Security-Policy.
 */

export interface ConsoleManifest {
  /** Hash of the sources and the bundled libraries' versions: the bundle is stale when it differs. */
  readonly inputs: string;
  readonly script: string;
  readonly style: string;
}

const require = createRequire(import.meta.url);

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)]))
    .sort();

const inputsHash = (): string => {
  const hash = createHash('sha256');
  for (const file of [...filesUnder(consoleSourceDir), fileURLToPath(import.meta.url)]) hash.update(relative(consoleSourceDir, file)).update('\0').update(readFileSync(file));
  for (const lib of ['preact', 'uplot', 'graphql-ws', 'esbuild']) hash.update(`${lib}@${(require(`${lib}/package.json`) as { version: string }).version}`);
  return hash.digest('hex');
};

export const readManifest = (dir = consoleDistDir): ConsoleManifest | null => {
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ConsoleManifest;
  } catch {
    return null;
  }
};

const indexHtml = (script: string, style: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>Switchyard console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${style}">
<script type="module" src="/assets/${script}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The Switchyard console needs JavaScript. The GraphQL API is at <a href="/graphql">/graphql</a>.</noscript>
</body>
</html>
`;

/** Build when the bundle is missing or its inputs changed (`ifStale`), else always. Returns whether it built. */
export const buildConsole = async (options: { ifStale?: boolean } = {}): Promise<boolean> => {
  const inputs = inputsHash();
  if (options.ifStale && readManifest()?.inputs === inputs && existsSync(join(consoleDistDir, 'index.html'))) return false;
  // Built beside the served folder and swapped in, so a server reading it never sees half a bundle.
  const staging = `${consoleDistDir}.staging-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const result = await build({
    entryPoints: [join(consoleSourceDir, 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: join(staging, 'assets'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    define: { 'process.env.NODE_ENV': '"production"' },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
    absWorkingDir: consoleSourceDir,
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file));
  const script = outputs.find((file) => file.endsWith('.js'));
  const style = outputs.find((file) => file.endsWith('.css'));
  if (!script || !style) throw new Error(`The console build produced no script or no stylesheet: ${outputs.join(', ')}`);
  writeFileSync(join(staging, 'index.html'), indexHtml(script, style));
  const manifest: ConsoleManifest = { inputs, script, style };
  writeFileSync(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  mkdirSync(dirname(consoleDistDir), { recursive: true });
  const old = `${consoleDistDir}.old-${process.pid}`;
  if (existsSync(consoleDistDir)) renameSync(consoleDistDir, old);
  renameSync(staging, consoleDistDir);
  rmSync(old, { recursive: true, force: true });
  return true;
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const ifStale = process.argv.includes('--if-stale');
  buildConsole({ ifStale }).then(
    (built) => console.log(built ? `console built into ${relative(process.cwd(), consoleDistDir)}` : 'console bundle is up to date'),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
