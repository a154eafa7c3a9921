import { ibanChecksumValid } from '../detectors/iban.js';
import { luhnValid } from '../detectors/payment-card.js';
import { ALNUM, BASE64URL, HEX, SeededRandom, UPPER_ALNUM } from './seeded-random.js';

/** Detector families the quality report is broken down by (`secret:*` rules count as `secret`). */
export const CORPUS_DETECTORS = ['card', 'iban', 'ssn', 'email', 'phone', 'ipv4', 'ipv6', 'jwt', 'secret', 'private-key'] as const;
export type CorpusDetector = (typeof CORPUS_DETECTORS)[number];

/** A value embedded in a sentence; `detector` undefined marks a hard negative. */
export interface LabelledSample {
  readonly value: string;
  readonly detector: CorpusDetector | undefined;
  /** What the sample exercises, e.g. `visa`, `iban-bad-checksum`. */
  readonly kind: string;
  /** Template with `{}` where the value goes. */
  readonly context: string;
}

const CONTEXTS = ['{}', 'value: {}', 'Customer record {} was updated.', '{"field":"{}"}', 'see ({}) for details', 'row 7\t{}\tok', 'Please use {} today', '<td>{}</td>'];

function luhnComplete(partial: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(partial + d)) return partial + d;
  throw new Error('unreachable');
}

function groupCard(digits: string, rnd: SeededRandom): string {
  const style = rnd.int(0, 2);
  if (style === 0) return digits;
  const sep = style === 1 ? ' ' : '-';
  const groups = digits.length === 15 ? [4, 6, 5] : digits.length === 14 ? [4, 6, 4] : [4, 4, 4, 4, 4];
  const out: string[] = [];
  let i = 0;
  for (const g of groups) {
    if (i >= digits.length) break;
    out.push(digits.slice(i, i + g));
    i += g;
  }
  if (i < digits.length) out.push(digits.slice(i));
  return out.join(sep);
}

const CARD_SPECS: readonly { kind: string; prefixes: readonly string[]; lengths: readonly number[] }[] = [
  { kind: 'visa', prefixes: ['4'], lengths: [16, 16, 16, 13, 19] },
  { kind: 'mastercard', prefixes: ['51', '52', '53', '54', '55', '2221', '2500', '2720'], lengths: [16] },
  { kind: 'amex', prefixes: ['34', '37'], lengths: [15] },
  { kind: 'discover', prefixes: ['6011', '65', '644'], lengths: [16] },
  { kind: 'jcb', prefixes: ['3528', '3566', '3589'], lengths: [16] },
  { kind: 'diners', prefixes: ['36', '300', '305', '38'], lengths: [14] },
  { kind: 'unionpay', prefixes: ['62'], lengths: [16, 19] },
];

function cards(rnd: SeededRandom, n: number): LabelledSample[] {
  const out: LabelledSample[] = [];
  for (let i = 0; i < n; i++) {
    const spec = CARD_SPECS[i % CARD_SPECS.length] as (typeof CARD_SPECS)[number];
    const prefix = rnd.pick(spec.prefixes);
    const length = rnd.pick(spec.lengths);
    const digits = luhnComplete(prefix + rnd.digits(length - prefix.length - 1));
    out.push({ value: groupCard(digits, rnd), detector: 'card', kind: spec.kind, context: rnd.pick(CONTEXTS) });
  }
  return out;
}

/** BBAN layouts: `n` digits, `a` upper-case letters, `c` alphanumerics. */
const IBAN_FORMATS: Readonly<Record<string, string>> = {
  DE: '18n', GB: '4a14n', FR: '23n', NL: '4a10n', ES: '20n', IT: '1a22n', BE: '12n', CH: '17n', AT: '16n',
  PL: '24n', SE: '20n', NO: '11n', DK: '14n', FI: '14n', IE: '4a14n', PT: '21n', LU: '16n', CZ: '20n',
};

function bban(format: string, rnd: SeededRandom): string {
  let out = '';
  for (const [, count, type] of format.matchAll(/(\d+)([nac])/g)) {
    const n = Number(count);
    out += type === 'n' ? rnd.digits(n) : type === 'a' ? rnd.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ', n) : rnd.chars(UPPER_ALNUM, n);
  }
  return out;
}

function mod97(numeric: string): number {
  let r = 0;
  for (const ch of numeric) r = (r * 10 + Number(ch)) % 97;
  return r;
}

export function makeIban(country: string, body: string): string {
  const numeric = (body + country + '00').replace(/[A-Z]/g, (c) => String(c.charCodeAt(0) - 55));
  const check = 98 - mod97(numeric);
  return country + String(check).padStart(2, '0') + body;
}

const groupBy4 = (s: string): string => s.replace(/(.{4})(?=.)/g, '$1 ');

function ibans(rnd: SeededRandom, n: number): { positives: LabelledSample[]; negatives: LabelledSample[] } {
  const positives: LabelledSample[] = [];
  const negatives: LabelledSample[] = [];
  const countries = Object.keys(IBAN_FORMATS);
  for (let i = 0; i < n; i++) {
    const country = countries[i % countries.length] as string;
    const iban = makeIban(country, bban(IBAN_FORMATS[country] as string, rnd));
    positives.push({ value: rnd.next() < 0.5 ? iban : groupBy4(iban), detector: 'iban', kind: `iban-${country}`, context: rnd.pick(CONTEXTS) });
    if (i % 2 === 0) {
      // Flip one check digit: same shape, wrong checksum.
      const d = Number(iban[3]);
      let broken = iban.slice(0, 3) + String((d + rnd.int(1, 9)) % 10) + iban.slice(4);
      if (ibanChecksumValid(broken)) broken = iban.slice(0, 2) + '00' + iban.slice(4);
      negatives.push({ value: rnd.next() < 0.5 ? broken : groupBy4(broken), detector: undefined, kind: 'iban-bad-checksum', context: rnd.pick(CONTEXTS) });
    }
  }
  return { positives, negatives };
}

function ssns(rnd: SeededRandom, n: number): { positives: LabelledSample[]; negatives: LabelledSample[] } {
  const positives: LabelledSample[] = [];
  const negatives: LabelledSample[] = [];
  const fmt = (a: number, g: number, s: number, sep: string): string => `${String(a).padStart(3, '0')}${sep}${String(g).padStart(2, '0')}${sep}${String(s).padStart(4, '0')}`;
  for (let i = 0; i < n; i++) {
    let area = rnd.int(1, 899);
    if (area === 666) area = 665;
    const sep = rnd.next() < 0.8 ? '-' : ' ';
    positives.push({ value: fmt(area, rnd.int(1, 99), rnd.int(1, 9999), sep), detector: 'ssn', kind: 'ssn', context: rnd.pick(CONTEXTS) });
    const bad = [fmt(0, rnd.int(1, 99), rnd.int(1, 9999), '-'), fmt(666, rnd.int(1, 99), rnd.int(1, 9999), '-'), fmt(rnd.int(900, 999), rnd.int(1, 99), rnd.int(1, 9999), '-'), fmt(rnd.int(1, 899), 0, rnd.int(1, 9999), '-'), fmt(rnd.int(1, 665), rnd.int(1, 99), 0, '-')];
    if (i % 2 === 0) negatives.push({ value: bad[i % bad.length] as string, detector: undefined, kind: 'ssn-invalid-range', context: rnd.pick(CONTEXTS) });
  }
  return { positives, negatives };
}

const FIRST = ['john', 'maria', 'wei', 'aisha', 'lars', 'sofia', 'raj', 'chen', 'olga', 'kofi', 'emma', 'liam'];
const LAST = ['smith', 'garcia', 'zhang', 'khan', 'nilsson', 'rossi', 'patel', 'li', 'ivanova', 'mensah', 'brown'];
const DOMAINS = ['example.com', 'mail.example.org', 'corp.example.co.uk', 'uni-example.edu', 'example.io', 'sub.dept.example.de', 'example.travel', 'x.example.com.au'];

function emails(rnd: SeededRandom, n: number): LabelledSample[] {
  const out: LabelledSample[] = [];
  for (let i = 0; i < n; i++) {
    const f = rnd.pick(FIRST);
    const l = rnd.pick(LAST);
    const local = rnd.pick([`${f}.${l}`, `${f}${rnd.int(1, 99)}`, `${f}_${l}`, `${f}+tag${rnd.int(1, 9)}`, `${f[0]}${l}`, `${f}.${l}-${rnd.int(10, 99)}`, `${f.toUpperCase()}.${l}`]);
    out.push({ value: `${local}@${rnd.pick(DOMAINS)}`, detector: 'email', kind: 'email', context: rnd.pick(CONTEXTS) });
  }
  return out;
}

/** Numbers built from each country's numbering plan (labels do not come from libphonenumber). */
const PHONE_MAKERS: readonly { kind: string; make: (r: SeededRandom) => string }[] = [
  { kind: 'phone-us', make: (r) => `(${r.pick(['212', '415', '312', '617', '206', '303', '512', '305', '404', '713'])}) ${r.int(2, 9)}${r.digits(2)}-${r.digits(4)}` },
  { kind: 'phone-us-intl', make: (r) => `+1 ${r.pick(['212', '646', '718', '202', '408', '650'])} ${r.int(2, 9)}${r.digits(2)} ${r.digits(4)}` },
  { kind: 'phone-us-dash', make: (r) => `${r.pick(['212', '415', '617', '720', '503'])}-${r.int(2, 9)}${r.digits(2)}-${r.digits(4)}` },
  { kind: 'phone-gb', make: (r) => `+44 20 7${r.digits(3)} ${r.digits(4)}` },
  { kind: 'phone-gb-mobile', make: (r) => `+44 7${r.pick(['400', '712', '800', '900', '540'])} ${r.digits(6)}` },
  { kind: 'phone-de', make: (r) => `+49 30 ${r.int(2, 9)}${r.digits(7)}` },
  { kind: 'phone-de-mobile', make: (r) => `+49 ${r.pick(['151', '160', '170', '176'])} ${r.digits(8)}` },
  { kind: 'phone-fr', make: (r) => `+33 ${r.pick(['1 4', '6 0', '6 1', '6 7', '7 5', '7 8'])}${r.digits(1)} ${r.digits(2)} ${r.digits(2)} ${r.digits(2)}` },
  { kind: 'phone-jp', make: (r) => `+81 3-${r.int(1, 9)}${r.digits(3)}-${r.digits(4)}` },
  { kind: 'phone-au', make: (r) => `+61 4${r.pick(['0', '1', '2', '3', '6'])}${r.digits(1)} ${r.digits(3)} ${r.digits(3)}` },
  { kind: 'phone-in', make: (r) => `+91 ${r.pick(['98', '99', '97', '70'])}${r.digits(3)} ${r.digits(5)}` },
  { kind: 'phone-br', make: (r) => `+55 11 9${r.digits(4)}-${r.digits(4)}` },
];

function phones(rnd: SeededRandom, n: number): LabelledSample[] {
  return Array.from({ length: n }, (_, i) => {
    const maker = PHONE_MAKERS[i % PHONE_MAKERS.length] as (typeof PHONE_MAKERS)[number];
    return { value: maker.make(rnd), detector: 'phone' as const, kind: maker.kind, context: rnd.pick(CONTEXTS) };
  });
}

function compressIpv6(groups: string[]): string {
  // Longest run of zero groups (length ≥ 2) becomes `::` (RFC 5952).
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

function ips(rnd: SeededRandom, n: number): LabelledSample[] {
  const out: LabelledSample[] = [];
  for (let i = 0; i < n; i++) {
    const v4 = rnd.pick([() => `10.${rnd.int(0, 255)}.${rnd.int(0, 255)}.${rnd.int(1, 254)}`, () => `192.168.${rnd.int(0, 255)}.${rnd.int(1, 254)}`, () => `${rnd.int(11, 223)}.${rnd.int(0, 255)}.${rnd.int(0, 255)}.${rnd.int(1, 254)}`])();
    out.push({ value: v4, detector: 'ipv4', kind: 'ipv4', context: rnd.pick(CONTEXTS) });
    const groups = Array.from({ length: 8 }, () => (rnd.next() < 0.35 ? '0' : rnd.int(0, 0xffff).toString(16)));
    groups[0] = rnd.pick(['2001', 'fe80', '2a00', 'fd12', '2606']);
    const v6 = rnd.pick([() => compressIpv6(groups), () => groups.join(':'), () => `::ffff:${v4}`, () => `2001:db8::${rnd.int(1, 0xffff).toString(16)}`])();
    out.push({ value: v6, detector: 'ipv6', kind: 'ipv6', context: rnd.pick(CONTEXTS) });
  }
  return out;
}

const b64url = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');

function jwts(rnd: SeededRandom, n: number): LabelledSample[] {
  const out: LabelledSample[] = [];
  for (let i = 0; i < n; i++) {
    const alg = rnd.pick(['HS256', 'RS256', 'ES256', 'PS384', 'EdDSA']);
    const header = rnd.next() < 0.5 ? { alg, typ: 'JWT' } : { alg, kid: rnd.chars(ALNUM, 12), typ: 'JWT' };
    const payload = { sub: rnd.chars(ALNUM, 10), iat: 1_700_000_000 + rnd.int(0, 9_999_999), exp: 1_800_000_000, scope: rnd.pick(['read', 'read write', 'admin']), email: `${rnd.pick(FIRST)}@example.com` };
    const sigLength = alg === 'RS256' || alg === 'PS384' ? 342 : alg === 'ES256' ? 86 : 43;
    out.push({ value: `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${rnd.chars(BASE64URL, sigLength)}`, detector: 'jwt', kind: `jwt-${alg}`, context: rnd.pick(['{}', 'Authorization: Bearer {}', '{"token":"{}"}', 'token={} ok']) });
  }
  return out;
}

const KEY_MAKERS: readonly { kind: string; make: (r: SeededRandom) => string }[] = [
  { kind: 'github-classic', make: (r) => `${r.pick(['ghp', 'gho', 'ghs'])}_${r.chars(ALNUM, 36)}` },
  { kind: 'github-fine-grained', make: (r) => `github_pat_${r.chars(ALNUM + '_', 82)}` },
  { kind: 'aws-access-key-id', make: (r) => `AKIA${r.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}` },
  { kind: 'slack', make: (r) => `xoxb-${r.digits(12)}-${r.digits(13)}-${r.chars(ALNUM, 24)}` },
  { kind: 'openai', make: (r) => `sk-proj-${r.chars(BASE64URL, 74)}T3BlbkFJ${r.chars(BASE64URL, 74)}` },
  { kind: 'anthropic', make: (r) => `sk-ant-api03-${r.chars(BASE64URL, 93)}AA` },
  { kind: 'stripe', make: (r) => `${r.pick(['sk_live', 'rk_live', 'sk_test'])}_${r.chars(ALNUM, 32)}` },
  { kind: 'npm', make: (r) => `npm_${r.chars(ALNUM, 36)}` },
  { kind: 'gitlab', make: (r) => `glpat-${r.chars(ALNUM, 20)}` },
  { kind: 'sendgrid', make: (r) => `SG.${r.chars(ALNUM, 22)}.${r.chars(ALNUM, 43)}` },
  { kind: 'basic-auth-url', make: (r) => `https://${r.pick(FIRST)}:${r.chars(ALNUM, 12)}@${r.pick(['api.example.com', 'example.org'])}/v1` },
  { kind: 'postgres-url', make: (r) => `postgres://app:${r.chars(ALNUM, 16)}@db.example.internal:5432/prod` },
  { kind: 'huggingface', make: (r) => `hf_${r.chars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 34)}` },
];

function pemKey(rnd: SeededRandom): string {
  const label = rnd.pick(['RSA PRIVATE KEY', 'PRIVATE KEY', 'EC PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY']);
  const body = 'MII' + Buffer.from(rnd.bytes(rnd.int(120, 1200))).toString('base64');
  return `-----BEGIN ${label}-----\n${body.replace(/(.{64})/g, '$1\n')}\n-----END ${label}-----`;
}

function keys(rnd: SeededRandom, n: number): LabelledSample[] {
  const out: LabelledSample[] = [];
  for (let i = 0; i < n; i++) {
    const maker = KEY_MAKERS[i % KEY_MAKERS.length] as (typeof KEY_MAKERS)[number];
    out.push({ value: maker.make(rnd), detector: 'secret', kind: maker.kind, context: rnd.pick(['{}', 'export TOKEN={}', '{"apiKey":"{}"}', 'key: {}', 'Authorization: Bearer {}']) });
    if (i % 4 === 0) out.push({ value: pemKey(rnd), detector: 'private-key', kind: 'pem', context: rnd.pick(['{}', 'key file:\n{}\nend', '```\n{}\n```']) });
  }
  return out;
}

/** Values that look like one of the above but are not. */
function hardNegatives(rnd: SeededRandom, n: number): LabelledSample[] {
  const makers: readonly { kind: string; make: () => string }[] = [
    // 13-digit millisecond timestamps and 19-digit nanosecond ones, made Luhn-valid: no card network starts with 1.
    { kind: 'luhn-timestamp-ms', make: () => luhnComplete(`17${rnd.digits(10)}`) },
    { kind: 'luhn-timestamp-ns', make: () => luhnComplete(`17${rnd.digits(16)}`) },
    { kind: 'luhn-order-id', make: () => luhnComplete(`9${rnd.digits(14)}`) },
    { kind: 'luhn-visa-wrong-length', make: () => luhnComplete(`4${rnd.digits(15)}`) },
    { kind: 'luhn-amex-wrong-length', make: () => luhnComplete(`37${rnd.digits(13)}`) },
    { kind: 'version-string', make: () => rnd.pick([`version ${rnd.int(1, 9)}.${rnd.int(0, 9)}.${rnd.int(0, 9)}.${rnd.int(0, 99)}`, `v${rnd.int(1, 20)}.${rnd.int(0, 9)}.${rnd.int(0, 9)}.${rnd.int(0, 9)}`, `Chrome/${rnd.int(100, 130)}.0.${rnd.int(1000, 9999)}.${rnd.int(10, 200)}`, `build ${rnd.int(1, 9)}.${rnd.int(0, 9)}.${rnd.int(0, 9)}.${rnd.int(0, 9)}`]) },
    { kind: 'uuid', make: () => `${rnd.chars(HEX, 8)}-${rnd.chars(HEX, 4)}-4${rnd.chars(HEX, 3)}-a${rnd.chars(HEX, 3)}-${rnd.chars(HEX, 12)}` },
    { kind: 'hex-hash', make: () => rnd.chars(HEX, rnd.pick([32, 40, 64])) },
    { kind: 'date', make: () => rnd.pick([`2024-${String(rnd.int(1, 12)).padStart(2, '0')}-${String(rnd.int(1, 28)).padStart(2, '0')}`, `${rnd.int(1, 28)}/${rnd.int(1, 12)}/2023`, `2024-03-0${rnd.int(1, 9)}T1${rnd.int(0, 9)}:30:00Z`, `1${rnd.int(0, 9)}:${rnd.int(10, 59)}:${rnd.int(10, 59)}`]) },
    { kind: 'invalid-ip', make: () => rnd.pick([`${rnd.int(256, 999)}.${rnd.int(0, 255)}.1.1`, `${rnd.int(1, 255)}.${rnd.int(0, 255)}.${rnd.int(0, 255)}`, `00:1A:2B:${rnd.chars('0123456789ABCDEF', 2)}:4D:5E`, 'std::vector<int>', `${rnd.int(10, 23)}:${rnd.int(10, 59)}`]) },
    { kind: 'not-email', make: () => rnd.pick([`${rnd.pick(FIRST)}@localhost`, `${rnd.pick(FIRST)}@`, `@${rnd.pick(DOMAINS)}`, `${rnd.pick(FIRST)}..x@example.com`, `user@example`]) },
    { kind: 'not-phone', make: () => rnd.pick([`${rnd.int(1, 9)},${rnd.digits(3)}.${rnd.digits(2)}`, `ISBN 978-${rnd.int(0, 9)}-${rnd.digits(2)}-${rnd.digits(6)}-${rnd.int(0, 9)}`, `order ${rnd.digits(2)}-${rnd.digits(4)}`, `(555) 01${rnd.digits(2)}`, `+${rnd.digits(3)}`]) },
    { kind: 'not-jwt', make: () => rnd.pick([`eyJ${rnd.chars(BASE64URL, 20)}.${rnd.chars(BASE64URL, 30)}.${rnd.chars(BASE64URL, 20)}`, `${b64url('{"typ":"JWT"}')}.${b64url('{"a":1}')}.${rnd.chars(BASE64URL, 20)}`]) },
    { kind: 'not-key', make: () => rnd.pick([`ghp_${rnd.chars(ALNUM, 12)}`, `sk-${rnd.chars(ALNUM, 10)}`, `AKIA${rnd.chars(UPPER_ALNUM, 12)}`, rnd.chars(ALNUM + '+/', 40), `npm_${rnd.chars(ALNUM, 20)}`, `https://example.com/path/${rnd.chars(ALNUM, 20)}`]) },
    { kind: 'not-pem', make: () => rnd.pick(['-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----', '-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----', '--- markdown rule ---']) },
    { kind: 'amount', make: () => `$${rnd.int(1, 99)},${rnd.digits(3)},${rnd.digits(3)}.${rnd.digits(2)}` },
  ];
  return Array.from({ length: n }, (_, i) => {
    const maker = makers[i % makers.length] as (typeof makers)[number];
    return { value: maker.make(), detector: undefined, kind: maker.kind, context: rnd.pick(CONTEXTS) };
  });
}

export interface LabelledCorpus {
  readonly seed: number;
  readonly samples: readonly LabelledSample[];
}

/** Deterministic labelled corpus: 2,500+ positives across all detectors plus hard negatives. */
export function generateLabelledCorpus(seed = 20240601): LabelledCorpus {
  const rnd = new SeededRandom(seed);
  const iban = ibans(rnd, 300);
  const ssn = ssns(rnd, 250);
  const samples = [
    ...cards(rnd, 400),
    ...iban.positives,
    ...ssn.positives,
    ...emails(rnd, 300),
    ...phones(rnd, 360),
    ...ips(rnd, 200),
    ...jwts(rnd, 200),
    ...keys(rnd, 390),
    ...iban.negatives,
    ...ssn.negatives,
    ...hardNegatives(rnd, 960),
  ];
  return { seed, samples };
}

export function renderSample(sample: LabelledSample): string {
  return sample.context.replace('{}', sample.value);
}
