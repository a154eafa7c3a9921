// LLM requests (the Anthropic Messages API body) through the policy-language interface: one unit
// per request, matched by model, token limit, tools offered and what the masking detectors of
// @custodian/masking find in the prompt text (system, messages, tool uses and tool results).
import { DETECTOR_IDS, DetectionProfile, maskText, type DetectorId } from '@custodian/masking';
import {
  FlagCriterion,
  NameCriterion,
  NamePatternList,
  protocolsOfLanguage,
  type LlmMatch,
  type PolicyLanguage,
  type PolicyUnit,
  type UnitMatcher,
} from '@custodian/policy';

/** The parsed JSON body of `POST /v1/messages`; validated by classify, so typed loosely. */
export type LlmPolicyInput = unknown;

/** `detected-<detector>` for every detector that found something in the prompt text. */
export type LlmDetectionFlag = `detected-${DetectorId}`;

export type LlmFlag =
  | LlmDetectionFlag
  /** The request carries tool results (data from the agent's side). */
  | 'tool-results'
  /** Content the detectors cannot read (images, PDFs, unknown block types) was not scanned. */
  | 'unscanned-content';

/** Credentials must not reach a model provider unless a rule names them (`flags` or `detectors`). */
export const GUARDED_LLM_FLAGS: readonly LlmFlag[] = ['detected-private-key', 'detected-secret', 'detected-jwt'];

/** Most prompt text (UTF-16 code units) scanned; a longer prompt is not classified (fail closed). */
export const MAX_LLM_PROMPT_CHARS = 8 * 1024 * 1024;

export interface LlmDetection {
  readonly detector: DetectorId;
  readonly count: number;
}

export interface LlmRequestView {
  readonly model: string;
  readonly maxTokens?: number;
  readonly stream: boolean;
  /** Names of the tools offered to the model. */
  readonly tools: readonly string[];
  readonly detections: readonly LlmDetection[];
  /** Prompt text scanned, in UTF-16 code units. */
  readonly promptChars: number;
}

export type LlmClassificationErrorCode =
  /** Not an object, no model, messages not a list, a block without a type… */
  | 'LLM_INVALID_REQUEST'
  | 'LLM_PROMPT_TOO_LARGE'
  | 'LLM_CLASSIFICATION_FAILED';

export type LlmClassification =
  | { readonly ok: true; readonly request: LlmRequestView; readonly flags: readonly LlmFlag[] }
  | { readonly ok: false; readonly error: { readonly code: LlmClassificationErrorCode } };

export interface LlmUnit extends PolicyUnit {
  readonly request: LlmRequestView;
}

let profile: DetectionProfile | undefined;

/** Every built-in detector, compiled once per process (building secretlint's rules is the slow part). */
function detectionProfile(): DetectionProfile {
  profile ??= new DetectionProfile();
  return profile;
}

class LlmClassificationFailure extends Error {
  constructor(readonly code: LlmClassificationErrorCode) {
    super(code);
  }
}

function invalid(): never {
  throw new LlmClassificationFailure('LLM_INVALID_REQUEST');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects prompt text and what could not be read, within the size limit. */
class PromptText {
  readonly pieces: string[] = [];
  chars = 0;
  toolResults = false;
  unscanned = false;

  add(text: string): void {
    this.chars += text.length;
    if (this.chars > MAX_LLM_PROMPT_CHARS) throw new LlmClassificationFailure('LLM_PROMPT_TOO_LARGE');
    this.pieces.push(text);
  }

  /** A string, or a list of content blocks. */
  content(content: unknown): void {
    if (typeof content === 'string') return this.add(content);
    if (!Array.isArray(content)) invalid();
    for (const block of content) this.block(block);
  }

  private block(block: unknown): void {
    if (!isRecord(block) || typeof block.type !== 'string') invalid();
    switch (block.type) {
      case 'text':
        if (typeof block.text !== 'string') invalid();
        return this.add(block.text);
      case 'thinking':
        if (typeof block.thinking === 'string') this.add(block.thinking);
        return;
      case 'redacted_thinking':
        return;
      case 'tool_use':
      case 'server_tool_use':
        // What the model asked for earlier goes back to it as context: its input is prompt text.
        if (block.input !== undefined) this.add(JSON.stringify(block.input));
        return;
      case 'tool_result':
        this.toolResults = true;
        if (block.content !== undefined) this.content(block.content);
        return;
      default:
        // Images, documents and block types this version does not know: not scanned.
        this.unscanned = true;
    }
  }
}

export function classifyLlm(input: LlmPolicyInput): LlmClassification {
  try {
    if (!isRecord(input) || typeof input.model !== 'string' || input.model === '' || !Array.isArray(input.messages)) invalid();
    const maxTokens = input.max_tokens;
    if (maxTokens !== undefined && (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 0)) invalid();
    if (input.tools !== undefined && !Array.isArray(input.tools)) invalid();
    const tools = ((input.tools ?? []) as unknown[]).map((tool) => (isRecord(tool) && typeof tool.name === 'string' ? tool.name : invalid()));
    const prompt = new PromptText();
    if (input.system !== undefined) prompt.content(input.system);
    for (const message of input.messages as unknown[]) {
      // Claude Code sends system-role turns inside `messages` (reminders, attribution): prompt text like `system`.
      if (!isRecord(message) || (message.role !== 'user' && message.role !== 'assistant' && message.role !== 'system')) invalid();
      prompt.content(message.content);
    }
    const counts = new Map<DetectorId, number>();
    const scanner = detectionProfile();
    for (const piece of prompt.pieces) {
      if (piece === '') continue;
      for (const finding of maskText(piece, { profile: scanner, location: 'prompt' }).findings.toArray()) {
        // Findings name sub-detectors (`secret:github`); rules name the base detector.
        const base = (finding.detector ?? '').split(':')[0] as DetectorId;
        if ((DETECTOR_IDS as readonly string[]).includes(base)) counts.set(base, (counts.get(base) ?? 0) + finding.count);
      }
    }
    const detections = DETECTOR_IDS.filter((id) => counts.has(id)).map((detector) => ({ detector, count: counts.get(detector)! }));
    const flags: LlmFlag[] = detections.map(({ detector }) => `detected-${detector}` as const);
    if (prompt.toolResults) flags.push('tool-results');
    if (prompt.unscanned) flags.push('unscanned-content');
    const request: LlmRequestView = {
      model: input.model,
      ...(maxTokens === undefined ? {} : { maxTokens }),
      stream: input.stream === true,
      tools,
      detections,
      promptChars: prompt.chars,
    };
    return { ok: true, request, flags };
  } catch (error) {
    // Includes RangeError from JSON.stringify on pathological tool inputs.
    return { ok: false, error: { code: error instanceof LlmClassificationFailure ? error.code : 'LLM_CLASSIFICATION_FAILED' } };
  }
}

class LlmMatcher implements UnitMatcher<LlmUnit> {
  private readonly models: NamePatternList | undefined;
  private readonly maxTokens: number | undefined;
  private readonly tools: NameCriterion | undefined;
  private readonly detectors: readonly string[] | undefined;
  private readonly flags: FlagCriterion | undefined;

  constructor(match: LlmMatch) {
    this.models = match.models === undefined ? undefined : new NamePatternList(match.models);
    this.maxTokens = match.maxTokens?.atMost;
    this.tools = match.tools === undefined ? undefined : new NameCriterion(match.tools, (sources) => new NamePatternList(sources));
    this.detectors = match.detectors?.map((detector) => `detected-${detector}`);
    this.flags = FlagCriterion.of(match.flags);
  }

  matches({ request, flags }: LlmUnit): boolean {
    if (this.models !== undefined && !this.models.matches(request.model)) return false;
    if (this.maxTokens !== undefined && (request.maxTokens === undefined || request.maxTokens > this.maxTokens)) return false;
    if (this.tools !== undefined && !this.tools.matches(request.tools.map((name) => [name]))) return false;
    if (this.detectors !== undefined && !this.detectors.some((flag) => flags.includes(flag))) return false;
    return this.flags === undefined || this.flags.matches(flags);
  }

  /** A rule listing a detector is about prompts where it finds something, so it names that flag. */
  names(flag: string): boolean {
    return this.flags?.names(flag) === true || this.detectors?.includes(flag) === true;
  }
}

const MAX_SUMMARY_TOOLS = 50;

export const llmLanguage: PolicyLanguage<'llm', LlmPolicyInput, LlmClassification, LlmUnit> = {
  name: 'llm',
  protocols: protocolsOfLanguage('llm'),
  unitNoun: 'message',
  guardedFlags: GUARDED_LLM_FLAGS,
  whenEmpty: { decision: 'deny', reason: 'no request to decide (default deny)' },
  ready: () => {
    detectionProfile();
    return Promise.resolve();
  },
  classify: classifyLlm,
  units: (classification) =>
    classification.ok
      ? { ok: true, units: [{ command: classification.request.model.slice(0, 200), flags: classification.flags, request: classification.request }] }
      : { ok: false, code: classification.error.code },
  compileMatch: (match) => new LlmMatcher(match),
  // Detector counts, never the text they found.
  summary: (classification) =>
    classification.ok
      ? {
          ok: true,
          model: classification.request.model.slice(0, 200),
          ...(classification.request.maxTokens === undefined ? {} : { maxTokens: classification.request.maxTokens }),
          stream: classification.request.stream,
          tools: classification.request.tools.slice(0, MAX_SUMMARY_TOOLS),
          detections: classification.request.detections,
          flags: classification.flags,
        }
      : { ok: false, error: classification.error.code },
};
