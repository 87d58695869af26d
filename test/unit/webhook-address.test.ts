// Goal: a webhook reaches public unicast addresses only, unless the operator's allow list says
// otherwise, whatever the URL's spelling, DNS answers or IPv4-mapped forms; a name that does not
// resolve is a temporary refusal; and the pinned lookup sends the socket to the checked address
// while the request keeps the name. Method: the real functions on literal addresses, explicit
// lookup functions for names (the real resolver for localhost), and a real HTTP server.
import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  checkTarget,
  connectLookup,
  forbiddenReason,
  noneAllowed,
  parseAllowList,
  TargetRefused,
  type LookupAll,
} from '../../src/webhooks/address.js';

/** A resolver that answers `answers` for every name. */
const answering =
  (...answers: string[]): LookupAll =>
  async () =>
    answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

async function refusal(promise: Promise<unknown>): Promise<TargetRefused> {
  const error = await promise.then(
    () => null,
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(TargetRefused);
  return error as TargetRefused;
}

describe('forbidden addresses', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.5', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['100.100.100.200', 'cloud metadata'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['fc00::1', 'private'],
    ['fdff:ffff::1', 'private'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['192.0.2.1', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['2001:db8::1', 'reserved'],
    ['64:ff9b::a00:1', 'NAT64'],
    ['::7f00:1', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'cloud metadata'],
    ['example.com', 'malformed'],
    ['127.1', 'malformed'],
  ])('refuses %s as %s', (address, reason) => {
    expect(forbiddenReason(address, noneAllowed)).toBe(reason);
  });

  it.each(['8.8.8.8', '1.1.1.1', '2606:4700::1111', '2001:4860:4860::8888', '::ffff:8.8.8.8', '172.32.0.1'])(
    'allows the public address %s',
    (address) => {
      expect(forbiddenReason(address, noneAllowed)).toBeNull();
    },
  );
});

describe('the allow list', () => {
  it('allows single addresses and CIDRs, spaces around commas, nothing for an empty text', () => {
    const allow = parseAllowList('127.0.0.0/8, ::1/128 ,10.1.2.3,fd00::/8');
    expect(forbiddenReason('127.0.0.1', allow)).toBeNull();
    expect(forbiddenReason('127.9.9.9', allow)).toBeNull();
    expect(forbiddenReason('::1', allow)).toBeNull();
    expect(forbiddenReason('10.1.2.3', allow)).toBeNull();
    expect(forbiddenReason('10.1.2.4', allow)).toBe('private');
    expect(forbiddenReason('fd12::1', allow)).toBeNull();
    expect(forbiddenReason('fe80::1', allow)).toBe('link-local');
    expect(forbiddenReason('8.8.8.8', allow)).toBeNull();
    expect(forbiddenReason('127.0.0.1', parseAllowList(''))).toBe('loopback');
    expect(forbiddenReason('127.0.0.1', parseAllowList('  '))).toBe('loopback');
  });

  it('matches IPv4-mapped addresses against the IPv4 entries, never across families', () => {
    const allow = parseAllowList('10.0.0.0/8');
    expect(forbiddenReason('::ffff:10.0.0.1', allow)).toBeNull();
    expect(forbiddenReason('fc00::1', parseAllowList('0.0.0.0/0'))).toBe('private');
    expect(forbiddenReason('127.0.0.1', parseAllowList('::/0'))).toBe('loopback');
  });

  it.each([
    ['10.0.0.0/33', '10.0.0.0/33'],
    ['nope', 'nope'],
    ['1.2.3', '1.2.3'],
    ['127.1/8', '127.1/8'],
    ['::1/129', '::1/129'],
    ['10.0.0.0/8/8', '10.0.0.0/8/8'],
    ['10.0.0.0/', '10.0.0.0/'],
    ['10.0.0.1,,10.0.0.2', ''],
  ])('refuses %s, naming the entry and what is expected', (text, entry) => {
    expect(() => parseAllowList(text)).toThrow(`invalid --webhook-allow entry "${entry}": expected an IPv4 or IPv6 address or CIDR`);
  });

  it('refuses IPv4-mapped entries, which could never match', () => {
    expect(() => parseAllowList('::ffff:10.0.0.1')).toThrow('write IPv4-mapped addresses as IPv4');
  });
});

describe('checking a webhook target', () => {
  it('judges IP literals without DNS, whatever their spelling', async () => {
    const noDns: LookupAll = () => {
      throw new Error('must not resolve an IP literal');
    };
    for (const url of ['http://127.0.0.1:8080/hook', 'http://0x7f.1/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/']) {
      const error = await refusal(checkTarget(url, noneAllowed, noDns));
      expect(error.reason).toBe('loopback');
      expect(error.temporary).toBe(false);
    }
    const error = await refusal(checkTarget('https://169.254.169.254/latest', noneAllowed, noDns));
    expect(error.message).toBe(
      'webhook target 169.254.169.254 is a cloud metadata address; allow it with --webhook-allow',
    );
    await expect(checkTarget('https://[2606:4700::1111]/x', noneAllowed, noDns)).resolves.toMatchObject({
      address: '2606:4700::1111',
      family: 6,
    });
  });

  it('answers the URL and the first address of a name, to connect to', async () => {
    const target = await checkTarget('https://hooks.example.com/a?b=1', noneAllowed, answering('8.8.8.8', '2606:4700::1111'));
    expect(target).toEqual({ url: new URL('https://hooks.example.com/a?b=1'), address: '8.8.8.8', family: 4 });
  });

  it('refuses a name when any of its addresses is forbidden', async () => {
    const error = await refusal(checkTarget('https://example.internal/', noneAllowed, answering('8.8.8.8', '10.0.0.5')));
    expect(error.reason).toBe('private');
    expect(error.message).toBe(
      'webhook target example.internal resolves to 10.0.0.5, a private address; allow it with --webhook-allow',
    );
    const allowed = await checkTarget('https://example.internal/', parseAllowList('10.0.0.5'), answering('8.8.8.8', '10.0.0.5'));
    expect(allowed.address).toBe('8.8.8.8');
  });

  it('refuses localhost through the real resolver, unless the allow list has loopback', async () => {
    const error = await refusal(checkTarget('http://localhost:9000/', noneAllowed));
    expect(error.reason).toBe('loopback');
    const target = await checkTarget('http://localhost:9000/', parseAllowList('127.0.0.0/8,::1/128'));
    expect(['127.0.0.1', '::1']).toContain(target.address);
    expect(target.family).toBe(target.address === '::1' ? 6 : 4);
  });

  it('refuses other schemes, credentials and malformed URLs for good', async () => {
    const ftp = await refusal(checkTarget('ftp://8.8.8.8/', noneAllowed));
    expect(ftp.reason).toBe('only http and https');
    const credentials = await refusal(checkTarget('http://user:pw@8.8.8.8/', noneAllowed));
    expect(credentials.reason).toBe('credentials in URL');
    expect(credentials.message).not.toContain('pw');
    expect((await refusal(checkTarget('http://user@8.8.8.8/', noneAllowed))).reason).toBe('credentials in URL');
    expect((await refusal(checkTarget('not a url', noneAllowed))).reason).toBe('invalid URL');
    for (const error of [ftp, credentials]) expect(error.temporary).toBe(false);
  });

  it('refuses a name that does not resolve as temporary', async () => {
    const notFound: LookupAll = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), { code: 'ENOTFOUND' });
    };
    const error = await refusal(checkTarget('https://nowhere.invalid/', noneAllowed, notFound));
    expect(error).toMatchObject({ reason: 'does not resolve', temporary: true });
    expect(error.message).toBe('webhook target nowhere.invalid does not resolve (ENOTFOUND)');
    const empty = await refusal(checkTarget('https://nowhere.invalid/', noneAllowed, answering()));
    expect(empty).toMatchObject({ reason: 'does not resolve', temporary: true });
  });

  it('gives up on a name that takes longer than its bound to resolve, as temporary', async () => {
    const never: LookupAll = () => new Promise(() => undefined);
    const started = performance.now();
    const error = await refusal(checkTarget('https://slow.invalid/', noneAllowed, never, 50));
    expect(error).toMatchObject({ reason: 'does not resolve', temporary: true, message: 'webhook target slow.invalid did not resolve within 50 ms' });
    expect(performance.now() - started).toBeLessThan(5000);
  });
});

describe('the pinned lookup', () => {
  it('answers the pinned address in both callback forms, asynchronously as dns.lookup does', async () => {
    const lookup = connectLookup('203.0.113.7', 4);
    const answers: unknown[] = [];
    lookup('anything.example', {}, (...args) => answers.push(args));
    lookup('anything.example', { all: true }, (...args) => answers.push(args));
    expect(answers).toEqual([]);
    await new Promise((resolve) => process.nextTick(resolve));
    expect(answers).toEqual([
      [null, '203.0.113.7', 4],
      [null, [{ address: '203.0.113.7', family: 4 }]],
    ]);
  });

  it('sends a real request to the pinned address while it keeps the name in Host', async () => {
    const server = createServer((req, res) => res.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const received = once(server, 'request') as Promise<[{ headers: IncomingHttpHeaders }]>;
      const req = request(`http://allot-test.invalid:${port}/hook`, { lookup: connectLookup('127.0.0.1', 4) });
      req.end();
      const [[{ headers }], [res]] = await Promise.all([received, once(req, 'response')]);
      expect(headers.host).toBe(`allot-test.invalid:${port}`);
      (res as NodeJS.ReadableStream).resume();
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
