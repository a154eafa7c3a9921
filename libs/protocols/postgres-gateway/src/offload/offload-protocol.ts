// Messages between the gateway's event loop and its offload workers (see offload-pool.ts). Types
// and one constant only: the event loop imports this file, never the worker's.
import type { MaskingFinding, MaskingPolicySpec } from '@custodian/masking';
import type { SqlClassificationErrorCode, SqlFlag, SqlKind, SqlStatementClassification } from '@custodian/sql-classification';

/** `workerData.role` of an offload worker (the entry file does nothing without it). */
export const OFFLOAD_WORKER_ROLE = 'custodian-postgres-offload';

/** A statement's text as events record it (masked by the detectors, or literal-free), with what was masked. */
export interface OffloadedText {
  readonly text: string;
  readonly findings: readonly MaskingFinding[];
}

export type PortableClassification =
  | {
      readonly ok: true;
      readonly kind: SqlKind;
      readonly statements: SqlStatementClassification[];
      readonly multiStatement: boolean;
      readonly flags: SqlFlag[];
      readonly normalized: string;
    }
  | { readonly ok: false; readonly error: { readonly code: SqlClassificationErrorCode; readonly message: string; readonly position?: number } };

export type OffloadTask =
  /** Classify a statement; with `mask`, also the text events record of it (masked under policy `mask.policy`). */
  | {
      readonly kind: 'classify';
      readonly text: string;
      readonly maxLength: number;
      readonly prepared: readonly (readonly [string, SqlStatementClassification])[];
      readonly mask?: { readonly policy: number; readonly field: string };
    }
  /** Detectors over free text (`mask-text`), or JSON-path rules and detectors over a json document (`mask-json`). */
  | { readonly kind: 'mask-text' | 'mask-json'; readonly policy: number; readonly text: string; readonly field: string };

export interface ClassifyResult {
  readonly classification: PortableClassification;
  readonly recorded?: OffloadedText;
}

export type OffloadRequest = OffloadTask & { readonly id: number };

/** Sent once per worker and masking policy, before the first task that names it. */
export interface MaskingPolicyMessage {
  readonly kind: 'masking-policy';
  readonly policy: number;
  readonly spec: MaskingPolicySpec;
}

export type OffloadReply =
  | { readonly id: number; readonly ok: true; readonly value: ClassifyResult | OffloadedText }
  | { readonly id: number; readonly ok: false; readonly message: string }
  /** Sent once, when the worker has loaded the parser and listens: tasks' time budgets start then. */
  | { readonly ready: true };
