import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * The compose file and the image, read as Docker reads them (neither Docker nor the servers run on the machines that
 * run this suite): what each promises in README's production section, checked so that an edit that breaks it fails.
 */
const repo = join(import.meta.dirname, '../..');
const read = (file: string): string => readFileSync(join(repo, file), 'utf8');

interface Service {
  image?: string;
  build?: string;
  restart?: string;
  profiles?: string[];
  ports?: (string | { host_ip?: string; published?: string | number; target: number })[];
  environment?: Record<string, string>;
  configs?: { source: string; target: string }[];
}
interface Compose {
  services: Record<string, Service>;
  configs?: Record<string, { content?: string }>;
}

/** Compose's interpolation with nothing set in the environment: `${NAME:-default}` → default, `${NAME}` → ''. */
const withDefaults = (text: string): string => text.replace(/\$\{\w+(?::?-([^}]*))?\}/g, (_, fallback: string | undefined) => fallback ?? '');

// Merge keys (`<<: *switchyard`) as Compose applies them.
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const services = Object.entries(compose.services);
const apps = services.filter(([, service]) => service.build === '.');

/** The host address each published port binds to, with the file's defaults. */
const hostAddresses = (service: Service): string[] =>
  (service.ports ?? []).map((port) => {
    if (typeof port !== 'string') return port.host_ip ?? '0.0.0.0';
    const parts = withDefaults(port).split(':');
    // "target", "published:target" (every interface) or "address:published:target".
    return parts.length === 3 ? parts[0]! : '0.0.0.0';
  });

describe('docker-compose.yml', () => {
  it('publishes every port on 127.0.0.1 only unless told otherwise (the databases have no authentication)', () => {
    const published = services.filter(([, service]) => (service.ports ?? []).length > 0);
    expect(published.map(([name]) => name)).toEqual(expect.arrayContaining(['eventstore', 'mongodb', 'switchyard']));
    const addresses = Object.fromEntries(published.map(([name, service]) => [name, hostAddresses(service)]));
    expect(addresses).toEqual(Object.fromEntries(published.map(([name, service]) => [name, service.ports!.map(() => '127.0.0.1')])));
    // The databases' ports are 127.0.0.1 literally: no variable widens them.
    for (const name of ['eventstore', 'mongodb']) for (const port of compose.services[name]!.ports ?? []) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('restarts every service unless it was stopped', () => {
    for (const [name, service] of services) expect({ name, restart: service.restart }).toEqual({ name, restart: 'unless-stopped' });
  });

  it('names the replica set member mongodb:27017, so a connection string from the host needs directConnection=true', () => {
    expect(read('docker-compose.yml')).toContain("host: 'mongodb:27017'");
    const hostUrls = [...`${read('.env.example')}\n${read('README.md')}`.matchAll(/mongodb:\/\/(?:localhost|127\.0\.0\.1)[^\s`'")]*/g)].map((m) => m[0]);
    expect(hostUrls.length).toBeGreaterThan(0);
    for (const url of hostUrls) expect(url).toMatch(/[?&]directConnection=true(&|$)/);
    // Inside the project's network the member name resolves: the app discovers the set.
    for (const [, app] of apps) expect(app.environment?.['MONGODB_URL']).toBe('mongodb://mongodb:27017/switchyard?replicaSet=rs0');
  });

  it('starts two app processes on the same stores behind one round-robin port with the scale profile', () => {
    const scaled = apps.filter(([, service]) => !service.profiles || service.profiles.includes('scale'));
    expect(scaled.length).toBeGreaterThanOrEqual(2);
    for (const [, app] of scaled) {
      expect(app.environment?.['EVENTSTORE_URL']).toBe(apps[0]![1].environment?.['EVENTSTORE_URL']);
      expect(app.environment?.['MONGODB_URL']).toBe(apps[0]![1].environment?.['MONGODB_URL']);
      expect(app.environment?.['PORT']).toBe('4000');
    }
    const proxies = services.filter(([, service]) => service.profiles?.includes('scale') && service.configs?.some((c) => c.target === '/etc/caddy/Caddyfile'));
    expect(proxies).toHaveLength(1);
    const [, proxy] = proxies[0]!;
    expect(hostAddresses(proxy)).toEqual(['127.0.0.1']);
    const caddyfile = compose.configs?.[proxy.configs![0]!.source]?.content ?? '';
    const listen = /^:(\d+)\s*\{/m.exec(caddyfile)?.[1];
    expect(withDefaults(String(proxy.ports![0])).split(':')[2]).toBe(listen);
    const upstreams = /reverse_proxy\s+([^{\n]+)\{/.exec(caddyfile)?.[1]?.trim().split(/\s+/) ?? [];
    expect(upstreams.sort()).toEqual(scaled.map(([name]) => `${name}:4000`).sort());
    expect(caddyfile).toMatch(/lb_policy round_robin/);
    expect(caddyfile).toMatch(/health_uri \/health/);
  });
});

describe('Dockerfile', () => {
  const lines = read('Dockerfile').split('\n');
  const lastFrom = lines.findLastIndex((line) => line.startsWith('FROM '));
  const runtime = lines.slice(lastFrom);

  it('runs on Node 24 LTS in every stage', () => {
    const bases = lines.filter((line) => line.startsWith('FROM ')).map((line) => line.split(/\s+/)[1]);
    expect(bases).toEqual(['node:24-bookworm-slim', 'node:24-bookworm-slim']);
  });

  it('runs the server as a non-root user that owns only its data directory', () => {
    const user = runtime.filter((line) => line.startsWith('USER ')).map((line) => line.slice(5).trim());
    expect(user).toHaveLength(1);
    expect(['root', '0', '0:0']).not.toContain(user[0]);
    const userLine = runtime.findIndex((line) => line.startsWith('USER '));
    expect(runtime.findIndex((line) => line.startsWith('CMD '))).toBeGreaterThan(userLine);
    expect(runtime.slice(0, userLine).join('\n')).toMatch(/chown node:node \/data/);
  });

  it('probes the health of the port the server listens on ($PORT), not a fixed one', () => {
    const healthcheck = runtime.find((line) => line.startsWith('HEALTHCHECK '));
    expect(healthcheck).toMatch(/process\.env\.PORT/);
    expect(healthcheck).not.toMatch(/\b4000\b/);
  });
});

describe('package.json', () => {
  it('promises the runtimes CI runs the suite on (Node 20.11+ and Node 24)', () => {
    const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=20.11');
    expect(read('.ci/run')).toMatch(/\.ci\/with-node24 npx vitest run/);
    expect(read('.ci/with-node24')).toMatch(/^NODE24_VERSION=24\.\d+\.\d+$/m);
  });
});
