import { rules as recommendedRules } from '@secretlint/secretlint-rule-preset-recommend';
import type { SecretLintRuleContext, SecretLintRuleCreator, SecretLintRuleReportDescriptor, SecretLintSourceCode } from '@secretlint/types';
import { SECRET_TOKEN_CLASS, type Detector, type ValidatedMatch } from './detector.js';

/**
 * API keys and credentials, recognised by secretlint's maintained recommended rule set
 * (@secretlint/secretlint-rule-preset-recommend: AWS, GCP, GitHub, GitLab, Slack, npm, OpenAI,
 * Anthropic, Stripe, SendGrid, basic-auth URLs, database connection strings, …).
 *
 * The rules keep their regexes inside closures, so they cannot be lifted into a streaming
 * scanner. Instead this detector finds bounded *tokens* (runs of non-space characters that are
 * not JSON/markup punctuation, 16–1024 long) and runs each rule over the token through the public
 * rule API (`create(context).file(source)`), exactly as secretlint's core would for a one-token
 * file. The match covers the token from the first reported offset to the token's end: some rules
 * report an offset but the length of a sub-capture, so the tail is masked too rather than risk
 * leaving part of a key.
 *
 * Known limits: secrets that need context across spaces or quotes (`aws_secret_access_key = "…"`)
 * and secrets past the first 1024 characters of a longer token are not seen here.
 *
 * Speed: every rule of the preset needs a fixed literal in what it reports (a prefix such as
 * `ghp_`, `AKIA`, `sk-ant-api0`, or `://` for credentials in URLs), listed in `RULE_TRIGGERS`.
 * A token runs only the rules whose literal it contains, and none when it contains none. A rule
 * without a listed literal (a future preset version) runs on every key-like token.
 */
const TOKEN_CHARS = SECRET_TOKEN_CLASS;
export const SECRET_TOKEN_MAX = 1024;

const RULE_PREFIX = '@secretlint/secretlint-rule-';

/** Rules whose subject is not a single token: private keys are handled by the PEM detector. */
const EXCLUDED_RULES = new Set(['privatekey', 'filter-comments', 'preset-recommend']);

/** Options per rule: scan AWS access key ids too, not only secret keys. */
const RULE_OPTIONS: Readonly<Record<string, object>> = { aws: { enableIDScanRule: true } };

interface Report {
  readonly rule: string;
  readonly start: number;
}

/** `[Aa][Cc]…`: case-insensitive in one alternation with case-sensitive literals. */
const caseless = (word: string): string => [...word].map((ch) => (/[a-z]/i.test(ch) ? `[${ch.toUpperCase()}${ch.toLowerCase()}]` : ch)).join('');

/**
 * A literal each rule's patterns require, per rule (read from the rules' sources in
 * @secretlint/secretlint-rule-preset-recommend 13; `src/detectors.test.ts` checks that gating by
 * them changes no result on the corpus and on near misses). `://` covers every URL-shaped rule:
 * basic auth, database connection strings, Slack webhooks, npm `x-oauth-basic` URLs. `gcp` only
 * inspects `.json`/`.p12` files, never a token; its literal is the JSON key it looks for.
 */
const RULE_TRIGGERS: Readonly<Record<string, string>> = {
  aws: String.raw`A3T|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA|${caseless('secret')}_?${caseless('access')}_?${caseless('key')}|${caseless('account')}`,
  gcp: 'private_key',
  npm: String.raw`npm_|:\/\/`,
  basicauth: String.raw`:\/\/`,
  slack: String.raw`xox[bpaor]-|xapp-|:\/\/`,
  sendgrid: String.raw`SG\.`,
  shopify: 'shp(?:pa|ca|at|ss)_',
  stripe: '[sr]k_(?:live|test)_',
  github: 'gh[pousr]_|github_pat_',
  gitlab: 'glpat-',
  grafana: 'glc_|glsa_',
  openai: 'T3BlbkFJ',
  anthropic: 'sk-ant-api0',
  groq: 'gsk_',
  huggingface: 'hf_',
  linear: 'lin_api_',
  notion: 'ntn_',
  '1password': 'ops_ey',
  'database-connection-string': String.raw`:\/\/`,
  'hashicorp-vault': String.raw`hv[sbr]\.`,
  vercel: 'vc[piark]_',
  databricks: 'dapi',
  docker: 'dckr_pat_',
  figma: 'figd_',
  cloudflare: 'cf(?:k|ut|at)_',
  tailscale: 'tskey-',
};

interface PreparedRule {
  readonly name: string;
  /** Tested on the token before the rule runs; undefined: always run. */
  readonly trigger: RegExp | undefined;
  readonly scan: (source: SecretLintSourceCode, sink: Report[]) => void;
}

function prepareRule(creator: SecretLintRuleCreator, name: string): PreparedRule {
  let sink: Report[] = [];
  const context: SecretLintRuleContext = {
    sharedOptions: {},
    // Messages embed the secret itself; only the message id is kept and nothing is logged.
    createTranslator: ((_messages: unknown) => (messageId: string) => ({ message: messageId, messageId, data: undefined })) as SecretLintRuleContext['createTranslator'],
    report(descriptor: SecretLintRuleReportDescriptor) {
      sink.push({ rule: name, start: descriptor.range[0] });
    },
    ignore() {},
  };
  const handler = creator.create(context, RULE_OPTIONS[name] ?? {});
  const trigger = RULE_TRIGGERS[name];
  return {
    name,
    trigger: trigger === undefined ? undefined : new RegExp(trigger),
    scan(source, into) {
      sink = into;
      const result = handler.file?.(source);
      // Text rules are synchronous; a rule that turns async is ignored rather than awaited mid-stream.
      if (result instanceof Promise) result.catch(() => undefined);
    },
  };
}

function sourceOf(content: string): SecretLintSourceCode {
  const unsupported = (): never => {
    throw new Error('location lookups are not supported on masking tokens');
  };
  return {
    hasBOM: false,
    content,
    filePath: undefined,
    physicalFilePath: undefined,
    contentType: 'text',
    ext: '',
    getFilePath: () => undefined,
    getPhysicalFilePath: () => undefined,
    locationToRange: unsupported,
    rangeToLocation: unsupported,
    positionToIndex: unsupported,
    indexToPosition: unsupported,
  };
}

export function secretRuleNames(): string[] {
  return prepareRules().map((r) => r.name);
}

function prepareRules(): PreparedRule[] {
  return (recommendedRules as unknown as SecretLintRuleCreator[])
    .filter((rule) => rule.meta.type === 'scanner' && rule.meta.supportedContentTypes.some((t) => t === 'text' || t === 'all'))
    .map((rule) => ({ rule, name: rule.meta.id.startsWith(RULE_PREFIX) ? rule.meta.id.slice(RULE_PREFIX.length) : rule.meta.id }))
    .filter(({ name }) => !EXCLUDED_RULES.has(name))
    .map(({ rule, name }) => prepareRule(rule, name));
}

/**
 * Cheap screen before 27 rules run: every supported format is a URL with credentials or has a
 * run of at least 12 key characters; plain lower-case words are never keys.
 */
const PLAIN_WORD = /^[a-z]+$/;
const KEY_LIKE = /:\/\/|[A-Za-z0-9+/=_-]{12}/;


export interface SecretlintDetectorOptions {
  /** Run only the rules whose literal a token contains (default). `false` runs all rules on every key-like token (for checking the gate). */
  readonly gateByRuleLiterals?: boolean;
}

export function createSecretlintDetector(options: SecretlintDetectorOptions = {}): Detector {
  const rules = prepareRules();
  const gated = options.gateByRuleLiterals ?? true;
  // One test for all literals first: most key-like tokens (hashes, UUIDs, timestamps) have none.
  const anyTrigger = gated && rules.every((r) => r.trigger !== undefined) ? new RegExp(rules.map((r) => (r.trigger as RegExp).source).join('|')) : undefined;
  return {
    id: 'secret',
    candidate: new RegExp(String.raw`(?<!${TOKEN_CHARS})${TOKEN_CHARS}{16,${SECRET_TOKEN_MAX}}`, 'g'),
    maxLength: SECRET_TOKEN_MAX,
    prefix: String.raw`(?<!${TOKEN_CHARS})${TOKEN_CHARS}{1,${SECRET_TOKEN_MAX - 1}}$`,
    trigger: { kind: 'token', minLength: 16 },
    // validate needs both in the candidate, so in any text holding it (neither regex is anchored).
    mayValidateIn: (text) => KEY_LIKE.test(text) && (anyTrigger === undefined || anyTrigger.test(text)),
    validate(candidate): ValidatedMatch | null {
      if (PLAIN_WORD.test(candidate) || !KEY_LIKE.test(candidate)) return null;
      if (anyTrigger !== undefined && !anyTrigger.test(candidate)) return null;
      const reports: Report[] = [];
      const source = sourceOf(candidate);
      for (const rule of rules) if (!gated || rule.trigger === undefined || rule.trigger.test(candidate)) rule.scan(source, reports);
      if (reports.length === 0) return null;
      let first = reports[0] as Report;
      for (const r of reports) if (r.start < first.start) first = r;
      const start = Math.min(Math.max(first.start, 0), candidate.length - 1);
      return { start, end: candidate.length, detector: `secret:${first.rule}` };
    },
  };
}
