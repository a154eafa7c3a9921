// What the evidence routes share: the configured evidence log (opened on first use, closed at
// shutdown), the control catalogue, and the mapping of evidence errors to HTTP refusals.
import { EvidenceError, loadControlCatalogue, type ControlCatalogue, type EvidenceLogState } from '@custodian/evidence';
import type { ConfiguredEvidence } from '@custodian/evidence-host';
import { ApiError } from '../authentication/api-error.js';

export const EVIDENCE_ACCESS = Symbol.for('@custodian/api-service/evidence-access');

export class EvidenceAccess {
  #state: Promise<EvidenceLogState> | undefined;
  readonly catalogue: ControlCatalogue;

  constructor(readonly evidence: ConfiguredEvidence | undefined) {
    this.catalogue = loadControlCatalogue();
  }

  configured(): ConfiguredEvidence {
    if (!this.evidence) throw new ApiError(503, 'EVIDENCE_NOT_CONFIGURED', 'this API has no evidence log configured');
    return this.evidence;
  }

  state(): Promise<EvidenceLogState> {
    const evidence = this.configured();
    this.#state ??= evidence.openState().catch((error: unknown) => {
      this.#state = undefined;
      throw error;
    });
    return this.#state;
  }

  async close(): Promise<void> {
    const state = this.#state;
    this.#state = undefined;
    if (state) await (await state).close();
  }
}

const STATUS: Readonly<Record<string, number>> = {
  EVIDENCE_SCOPE_INVALID: 400,
  EVIDENCE_COSIGNATURE_REJECTED: 400,
  EVIDENCE_NOT_CHECKPOINTED: 409,
  EVIDENCE_LEAF_MISMATCH: 409,
  EVIDENCE_KEY_INVALID: 503,
};

/** Evidence errors as API refusals with their code; anything else is rethrown. */
export function asApiError(error: unknown): never {
  if (error instanceof EvidenceError) throw new ApiError(STATUS[error.code] ?? 500, error.code, error.message);
  throw error;
}
