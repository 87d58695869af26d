/**
 * The request-forgery (SSRF) guard for webhook targets: a webhook reaches public unicast
 * addresses only, unless the operator allows more with `--webhook-allow`. It judges addresses,
 * never names, so no DNS name, IPv4 spelling or IPv4-mapped IPv6 form gets around it; and the
 * caller connects to the very address judged (connectLookup), so DNS cannot answer twice.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { assert } from '../domain/assert.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** The operator's allowed ranges; made by parseAllowList. */
export interface AllowList {
  readonly ranges: readonly (readonly [Address, number])[];
}

export const noneAllowed: AllowList = Object.freeze({ ranges: Object.freeze([]) });

const allowExpected = 'expected an IPv4 or IPv6 address or CIDR, such as 10.1.2.3, 10.0.0.0/8 or fd00::/8';

/** `--webhook-allow`: comma-separated CIDRs or single addresses; empty allows nothing. */
export function parseAllowList(text: string): AllowList {
  if (text.trim() === '') return noneAllowed;
  return { ranges: text.split(',').map((entry) => parseAllowEntry(entry.trim())) };
}

function parseAllowEntry(entry: string): [Address, number] {
  const [address = '', prefix, extra] = entry.split('/');
  // ipaddr.js alone reads '1.2.3' as 1.2.0.3: a typo must not allow an address nobody meant.
  const strict = ipaddr.IPv4.isValidFourPartDecimal(address) || ipaddr.IPv6.isValid(address);
  const valid = strict && extra === undefined && (prefix === undefined || ipaddr.isValidCIDR(entry));
  if (!valid) throw new Error(`invalid --webhook-allow entry "${entry}": ${allowExpected}`);
  const range = prefix === undefined ? single(ipaddr.parse(address)) : ipaddr.parseCIDR(entry);
  // Mapped addresses are judged as IPv4, so such an entry would never match anything.
  if (range[0] instanceof ipaddr.IPv6 && range[0].isIPv4MappedAddress()) {
    throw new Error(`invalid --webhook-allow entry "${entry}": write IPv4-mapped addresses as IPv4`);
  }
  return range;
}

const single = (address: Address): [Address, number] => [address, address.kind() === 'ipv4' ? 32 : 128];

const metadataAddresses = new Set(
  ['169.254.169.254', 'fd00:ec2::254', '100.100.100.200'].map((text) => ipaddr.parse(text).toNormalizedString()),
);

/** ipaddr.js calls ::/8 unicast (the old IPv4-compatible ::a.b.c.d), but only 2000::/3 is global. */
const globalUnicastV6 = ipaddr.parseCIDR('2000::/3');

/** ipaddr.js range names as reasons; any other range that is not unicast is 'reserved'. */
const rangeReasons: Record<string, string> = {
  loopback: 'loopback', private: 'private', uniqueLocal: 'private', linkLocal: 'link-local',
  unspecified: 'unspecified', multicast: 'multicast', broadcast: 'broadcast',
  carrierGradeNat: 'carrier-grade NAT', deprecatedSiteLocal: 'site-local', rfc6052: 'NAT64',
};

/** Null if a webhook may connect to this IP literal, else why not ('loopback', 'private'…). */
export function forbiddenReason(address: string, allow: AllowList): string | null {
  const parsed = parseLiteral(address);
  if (parsed === null) return 'malformed';
  if (allow.ranges.some((range) => range[0].kind() === parsed.kind() && parsed.match(range[0], range[1]))) return null;
  if (metadataAddresses.has(parsed.toNormalizedString())) return 'cloud metadata';
  const range = parsed.range();
  if (range !== 'unicast') return rangeReasons[range] ?? 'reserved';
  return parsed.kind() === 'ipv6' && !parsed.match(globalUnicastV6) ? 'reserved' : null;
}

/** Strictly an IP literal (no '127.1'), an IPv4-mapped IPv6 address as its IPv4 address. */
function parseLiteral(text: string): Address | null {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (!ipaddr.IPv6.isValid(text)) return null;
  const address = ipaddr.IPv6.parse(text);
  return address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
}

export class TargetRefused extends Error {
  override name = 'TargetRefused';
  /** `temporary`: the name did not resolve, which a later attempt may change. */
  constructor(readonly reason: string, message: string, readonly temporary = false, options?: ErrorOptions) {
    super(message, options);
  }
}

export type LookupAll = (host: string) => Promise<{ address: string; family: number }[]>;

const lookupAll: LookupAll = (host) => dnsLookup(host, { all: true, verbatim: true });

export interface CheckedTarget {
  url: URL;
  address: string;
  family: 4 | 6;
}

/** How long a name may take to resolve, unless the caller says (the resolver has no deadline of its own). */
export const resolveWithinMsDefault = 5000;

/** The address to connect to for a webhook URL, or TargetRefused saying why there is none. */
export async function checkTarget(url: string | URL, allow: AllowList, lookup = lookupAll, withinMs = resolveWithinMsDefault): Promise<CheckedTarget> {
  const target = parseTarget(url);
  const host = target.hostname;
  // The URL parser has written any IPv4 spelling in four decimal parts (0x7f.1 → 127.0.0.1).
  const literal = host.startsWith('[') ? host.slice(1, -1) : ipaddr.IPv4.isValidFourPartDecimal(host) ? host : null;
  const answers = literal === null ? await resolve(host, lookup, withinMs) : [literal];
  // Every answer, not only the first: one name can resolve to a public and a private address.
  for (const address of answers) {
    const reason = forbiddenReason(address, allow);
    if (reason === null) continue;
    const what = literal === null ? `resolves to ${address}, ${article(reason)}` : `is ${article(reason)}`;
    throw new TargetRefused(reason, `webhook target ${host} ${what} address; allow it with --webhook-allow`);
  }
  // Pinned: the caller connects to this address, so a second DNS answer cannot differ from it.
  const address = answers[0]!;
  return { url: target, address, family: ipaddr.parse(address).kind() === 'ipv4' ? 4 : 6 };
}

function parseTarget(url: string | URL): URL {
  if (typeof url === 'string' && !URL.canParse(url)) {
    throw new TargetRefused('invalid URL', 'webhook target is not a valid URL');
  }
  const target = typeof url === 'string' ? new URL(url) : url;
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    const message = `webhook target scheme ${target.protocol} is refused: only http and https`;
    throw new TargetRefused('only http and https', message);
  }
  // Credentials in a URL end up in logs and in the delivery records; a signing secret is the way.
  if (target.username !== '' || target.password !== '') {
    throw new TargetRefused('credentials in URL', `webhook target ${target.hostname} holds a user name or password`);
  }
  return target;
}

async function resolve(host: string, lookup: LookupAll, withinMs: number): Promise<string[]> {
  let cause: unknown;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TargetRefused('does not resolve', `webhook target ${host} did not resolve within ${withinMs} ms`, true)), withinMs);
  });
  try {
    // The wait is bounded, not the lookup: a slow one still holds a resolver thread until it ends.
    const answers = await Promise.race([lookup(host), late]);
    if (answers.length > 0) return answers.map((answer) => answer.address);
  } catch (error) {
    if (error instanceof TargetRefused) throw error;
    cause = error;
  } finally {
    clearTimeout(timer);
  }
  const code = (cause as { code?: unknown } | undefined)?.code;
  const detail = typeof code === 'string' ? ` (${code})` : '';
  throw new TargetRefused('does not resolve', `webhook target ${host} does not resolve${detail}`, true, { cause });
}

const article = (word: string) => (/^[aeiou]/i.test(word) ? `an ${word}` : `a ${word}`);

/**
 * A `lookup` for net, http and undici that always answers the pinned address: the URL keeps
 * the name (TLS SNI, Host header) while the socket goes to the address checkTarget judged.
 * One per checked target: it ignores the host name it is asked about.
 */
export function connectLookup(address: string, family: 4 | 6): LookupFunction {
  assert(ipaddr.isValid(address), `connectLookup needs an IP address, not ${address}`);
  // Asynchronously, as dns.lookup does: net attaches its listeners after it calls lookup.
  return (_hostname, options, callback) => {
    if (options.all === true) process.nextTick(() => callback(null, [{ address, family }]));
    else process.nextTick(() => callback(null, address, family));
  };
}
