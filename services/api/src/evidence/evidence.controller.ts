import { hostname } from 'node:os';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import { Body, Controller, Get, HttpCode, Inject, Post, Query, Req, Res } from '@nestjs/common';
import { EventFactory, streamName, type CustodianEvent } from '@custodian/event-contracts';
import type { EventStore } from '@custodian/event-store';
import { EvidenceAccumulator, buildEvidencePack, checkScope, cosignedNote, eventsOfLeaves, submitCosignatures, verifyEvidencePackStream, witnessVerifiers, type EvidenceReport, type EvidenceScope, type PackVerificationReport } from '@custodian/evidence';
import { EVENT_STORE } from '@custodian/service-host';
import { ApiError } from '../authentication/api-error.js';
import { principalOf } from '../authentication/principal.js';
import { EVIDENCE_ACCESS, asApiError, type EvidenceAccess } from './evidence-access.js';

/** The evidence views' report (coverage and findings) for a scope: one pass over the scope's checkpointed events. */
export async function evidenceReport(access: EvidenceAccess, eventStore: EventStore, requested: EvidenceScope): Promise<EvidenceReport> {
  const evidence = access.configured();
  const scope = checkScope(requested, access.catalogue);
  const state = await access.state();
  const accumulator = new EvidenceAccumulator({
    catalogue: access.catalogue,
    scope,
    checkpoints: (await state.checkpoints()).map((c) => ({ treeSize: c.treeSize, signedAt: c.signedAt })),
    origin: evidence.origin,
    maskingRules: evidence.maskingRules,
    maxCheckpointDelaySeconds: evidence.maxCheckpointDelaySeconds,
    now: new Date().toISOString() < scope.to ? `${new Date().toISOString().slice(0, 23)}000Z` : scope.to,
  });
  for await (const item of eventsOfLeaves(eventStore, state, { from: scope.from, to: scope.to })) accumulator.add(item);
  return accumulator.finish();
}

/** Largest pack verified by upload (the CLI verifies any size offline). */
export const MAX_VERIFY_UPLOAD_BYTES = 512 * 1024 * 1024;

export const EVIDENCE_INSTANCE = Symbol.for('@custodian/api-service/evidence-instance');

interface ScopeQuery {
  readonly from?: string;
  readonly to?: string;
  readonly identity?: string;
  readonly connection?: string;
  readonly control?: string;
}

function scopeOf(query: ScopeQuery): EvidenceScope {
  if (typeof query.from !== 'string' || typeof query.to !== 'string') throw new ApiError(400, 'EVIDENCE_SCOPE_INVALID', 'from and to (RFC 3339) are required');
  for (const key of ['identity', 'connection', 'control'] as const) if (query[key] !== undefined && typeof query[key] !== 'string') throw new ApiError(400, 'EVIDENCE_SCOPE_INVALID', `${key} must be a string`);
  return {
    from: query.from,
    to: query.to,
    ...(query.identity ? { identity: query.identity } : {}),
    ...(query.connection ? { connection: query.connection } : {}),
    ...(query.control ? { control: query.control } : {}),
  };
}

// Authenticated by the module's AuthenticationGuard; pack export additionally needs an auditor group.
@Controller('v1/evidence')
export class EvidenceController {
  readonly #factory: EventFactory;

  constructor(
    @Inject(EVIDENCE_ACCESS) private readonly access: EvidenceAccess,
    @Inject(EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(EVIDENCE_INSTANCE) instance: string | undefined,
  ) {
    this.#factory = new EventFactory({ service: 'api', instance: instance ?? `${hostname()}:${process.pid}` });
  }

  /** The control catalogue: what each control asks and which events evidence it (data files). */
  @Get('controls')
  controls(): object {
    const { catalogue } = this.access;
    return {
      catalogues: catalogue.catalogues,
      controls: catalogue.controls.map((c) => ({ ...c, evidencedBy: catalogue.rules.filter((r) => r.controls.includes(c.id)).map((r) => ({ rule: r.id, event: r.event, ...(r.where ? { where: r.where } : {}), description: r.description })) })),
      findingKinds: catalogue.findings,
    };
  }

  /** Counts per control, sample sessions and findings over a period. */
  @Get('report')
  async report(@Query() query: ScopeQuery): Promise<EvidenceReport> {
    return this.#report(scopeOf(query)).catch(asApiError);
  }

  @Get('findings')
  async findings(@Query() query: ScopeQuery): Promise<{ scope: EvidenceScope; findings: EvidenceReport['findings'] }> {
    const report = await this.#report(scopeOf(query)).catch(asApiError);
    return { scope: report.scope, findings: report.findings };
  }

  /** The log's origin, size, keys and latest checkpoint: what an auditor pins. */
  @Get('log')
  async log(): Promise<object> {
    const evidence = this.access.configured();
    const state = await this.access.state();
    const latest = await state.lastCheckpoint();
    return {
      origin: evidence.origin,
      treeSize: await state.leafCount(),
      keys: await state.keys(),
      // The key that attests packs (pin it apart from the log keys); null until the first export creates the default one.
      attestationKey: attestationVkey(evidence),
      witnesses: evidence.witnesses,
      latestCheckpoint: latest ? { treeSize: latest.treeSize, rootHash: latest.rootHash.toString('base64'), signedAt: latest.signedAt, note: cosignedNote(latest, await state.cosignatures(latest.treeSize)) } : null,
    };
  }

  @Get('checkpoints')
  async checkpoints(): Promise<object> {
    const state = await this.access.state();
    const cosignatures = await state.cosignatures();
    return {
      checkpoints: (await state.checkpoints()).map((c) => ({ treeSize: c.treeSize, rootHash: c.rootHash.toString('base64'), signedAt: c.signedAt, keyIds: c.keyIds, note: cosignedNote(c, cosignatures) })),
    };
  }

  /** A witness submits a checkpoint note carrying its cosignature (c2sp.org/tlog-cosignature). */
  @Post('cosignatures')
  @HttpCode(201)
  async cosign(@Body() body: { note?: unknown }): Promise<object> {
    if (typeof body?.note !== 'string') throw new ApiError(400, 'EVIDENCE_COSIGNATURE_REJECTED', 'body must be { "note": "<signed checkpoint note with cosignature lines>" }');
    const evidence = this.access.configured();
    const stored = await submitCosignatures(await this.access.state(), witnessVerifiers(evidence.witnesses), body.note).catch(asApiError);
    return { stored: stored.map((c) => ({ treeSize: c.treeSize, witness: c.witness, keyId: c.keyId, timestamp: c.timestamp })) };
  }

  /**
   * Verifies an uploaded pack (the request body, application/gzip) exactly as `custodian evidence
   * verify --json --key <this log's keys> --attestation-key <this API's pack key>` does: streamed, bounded memory, at most
   * MAX_VERIFY_UPLOAD_BYTES. The result names the first failure. Auditors only (it costs CPU).
   */
  @Post('packs/verify')
  @HttpCode(200)
  async verify(@Req() request: IncomingMessage): Promise<PackVerificationReport> {
    const evidence = this.access.configured();
    const principal = principalOf(request);
    if (!principal || !principal.identity.groups.some((g) => evidence.auditorGroups.includes(g))) {
      throw new ApiError(403, 'EVIDENCE_VERIFY_FORBIDDEN', `verifying evidence packs here needs membership of one of: ${evidence.auditorGroups.join(', ')} (anyone can run custodian evidence verify offline)`);
    }
    const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim();
    if (type !== 'application/gzip' && type !== 'application/octet-stream') throw new ApiError(415, 'EVIDENCE_PACK_TYPE_INVALID', 'send the pack as the request body (application/gzip)');
    const declared = Number(request.headers['content-length'] ?? NaN);
    if (declared > MAX_VERIFY_UPLOAD_BYTES) throw new ApiError(413, 'EVIDENCE_PACK_TOO_LARGE', `packs up to ${MAX_VERIFY_UPLOAD_BYTES} bytes are verified here; verify larger ones offline with custodian evidence verify`);
    let received = 0;
    const limited = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        if (received > MAX_VERIFY_UPLOAD_BYTES) done(new ApiError(413, 'EVIDENCE_PACK_TOO_LARGE', `packs up to ${MAX_VERIFY_UPLOAD_BYTES} bytes are verified here`));
        else done(null, chunk);
      },
    });
    request.pipe(limited);
    request.on('error', (error) => limited.destroy(error));
    const state = await this.access.state();
    const attestationKey = attestationVkey(evidence);
    return verifyEvidencePackStream(limited, { trustedLogKeys: await state.keys(), ...(attestationKey ? { trustedAttestationKeys: [attestationKey] } : {}) });
  }

  /** An evidence pack (tar.gz) for auditors. The export is recorded as an evidence-pack.exported event before the pack is sent. */
  @Post('packs')
  async pack(@Body() body: ScopeQuery, @Req() request: IncomingMessage, @Res() response: ServerResponse): Promise<void> {
    const evidence = this.access.configured();
    const principal = principalOf(request);
    if (!principal || !principal.identity.groups.some((g) => evidence.auditorGroups.includes(g))) {
      throw new ApiError(403, 'EVIDENCE_EXPORT_FORBIDDEN', `exporting evidence packs needs membership of one of: ${evidence.auditorGroups.join(', ')}`);
    }
    const scope = scopeOf(body ?? {});
    const state = await this.access.state();
    const packId = randomUUID();
    const pack = await buildEvidencePack({
      store: this.eventStore,
      state,
      catalogue: this.access.catalogue,
      scope,
      // The pack attestation key, not the log key (only the projector holds that one).
      signer: evidence.loadAttestationSigner({ create: true }).signer,
      exportedBy: principal.identity,
      witnessKeys: evidence.witnesses,
      maskingRules: evidence.maskingRules,
      maxCheckpointDelaySeconds: evidence.maxCheckpointDelaySeconds,
      packId,
    }).catch(asApiError);
    const event = this.#factory.create({
      type: 'evidence-pack.exported',
      stream: streamName('evidence', packId),
      sequence: 0,
      identity: principal.identity,
      payload: { packId, digest: pack.digest, filter: pack.manifest.scope, eventCount: pack.manifest.counts.events, treeSize: pack.manifest.latestCheckpoint.treeSize },
    });
    try {
      await this.eventStore.append(event.stream, [event as CustodianEvent], { expectedRevision: 'no-stream' });
    } catch {
      throw new ApiError(503, 'AUDIT_UNAVAILABLE', 'the export could not be recorded, so the pack is not sent');
    }
    response.statusCode = 200;
    response.setHeader('content-type', 'application/gzip');
    response.setHeader('content-disposition', `attachment; filename="custodian-evidence-${packId}.tar.gz"`);
    response.setHeader('x-custodian-pack-id', packId);
    response.setHeader('x-custodian-pack-sha256', pack.digest);
    response.setHeader('cache-control', 'no-store');
    response.end(pack.bytes);
  }

  #report(requested: EvidenceScope): Promise<EvidenceReport> {
    return evidenceReport(this.access, this.eventStore, requested);
  }

}

function attestationVkey(evidence: { loadAttestationSigner(): { signer: { vkey: string } } }): string | null {
  try {
    return evidence.loadAttestationSigner().signer.vkey;
  } catch {
    return null;
  }
}
