import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboundPolicy, createSystemResolver } from '../../src/modules/outbound/outboundPolicy.js';
import { DEADLINE_MS } from '../support/eventually.js';
import { holdThreadPool } from '../support/holdThreadPool.js';

/**
 * A DNS server on a local UDP port: `public.test` has one A record, `silent.test` is never answered, every other name
 * is NXDOMAIN. Only what a stub resolver needs: the question is copied back, the answer points at it.
 */
const startDns = async (): Promise<{ socket: Socket; server: string; asked: string[] }> => {
  const socket = createSocket('udp4');
  const asked: string[] = [];
  socket.on('message', (query, from) => {
    let at = 12;
    const labels: string[] = [];
    while (query[at]! > 0) {
      labels.push(query.subarray(at + 1, at + 1 + query[at]!).toString('ascii'));
      at += 1 + query[at]!;
    }
    const questionEnd = at + 5;
    const name = labels.join('.').toLowerCase();
    const type = query.readUInt16BE(at + 1);
    asked.push(`${name}/${type}`);
    if (name === 'silent.test') return;
    const found = name === 'public.test';
    const answer = found && type === 1 ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 93, 184, 216, 34]) : Buffer.alloc(0);
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2);
    header.writeUInt16BE(found ? 0x8180 : 0x8183, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answer.length > 0 ? 1 : 0, 6);
    socket.send(Buffer.concat([header, query.subarray(12, questionEnd), answer]), from.port, from.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, server: `127.0.0.1:${socket.address().port}`, asked };
};

/**
 * The timeout of a resolver whose server answers: only a bound on a hang (an answer that came after 1 s, the server
 * being this process on a loaded host, failed the name with ETIMEOUT and no fallback). The silent server's test keeps a
 * short one: its timeout is what it proves.
 */
const ANSWERED_MS = DEADLINE_MS;

describe("the system resolver: names on the network are resolved off libuv's thread pool", () => {
  let dns: Awaited<ReturnType<typeof startDns>>;
  let dir: string;
  beforeAll(async () => {
    dns = await startDns();
    dir = await mkdtemp(join(tmpdir(), 'resolver-'));
  });
  afterAll(async () => {
    dns.socket.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves a name from DNS while every pool thread is held (as a silent DNS server holds getaddrinfo), and the policy judges its addresses as before', async () => {
    const resolve = createSystemResolver({ servers: [dns.server], timeoutMs: ANSWERED_MS, tries: 1 });
    const pool = await holdThreadPool(dir);
    try {
      expect(pool.poolFree()).toBe(false);
      expect(await resolve('public.test')).toEqual([{ address: '93.184.216.34', family: 4 }]);
      expect(await createOutboundPolicy({ resolve }).checkUrl('https://public.test/v1')).toBeNull();
      expect(pool.poolFree()).toBe(false);
    } finally {
      await pool.release();
    }
  });

  it('a server that never answers fails the name with ETIMEOUT, without falling back to getaddrinfo', async () => {
    const resolve = createSystemResolver({ servers: [dns.server], timeoutMs: 200, tries: 1 });
    await expect(resolve('silent.test')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    const policy = createOutboundPolicy({ resolve });
    expect((await policy.checkUrl('http://silent.test/'))?.message).toBe('silent.test does not resolve (ETIMEOUT)');
  });

  it('a name DNS does not know falls back to the system lookup (the hosts file): localhost, then refused as loopback', async () => {
    const resolve = createSystemResolver({ servers: [dns.server], timeoutMs: ANSWERED_MS, tries: 1 });
    const before = dns.asked.length;
    const addresses = await resolve('localhost');
    expect(dns.asked.slice(before).sort()).toEqual(['localhost/1', 'localhost/28']);
    expect(addresses.map((a) => a.address)).toContain('127.0.0.1');
    const policy = createOutboundPolicy({ resolve });
    expect((await policy.checkUrl('http://localhost:8080/'))?.message).toMatch(/^localhost resolves to (127\.0\.0\.1|::1), which is a loopback address/);
  });
});
