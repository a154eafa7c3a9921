import { Body, Controller, Get, HttpCode, Inject, Param, Post, Req } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { EventSource, Identity } from '@custodian/event-contracts';
import { EventStoreError, type EventStore } from '@custodian/event-store';
import { EVENT_STORE } from '@custodian/service-host';
import { ToolPinError, ToolPinLedger, type ToolPin, type ToolPinErrorCode } from '@custodian/tool-pins';
import { ApiError } from '../authentication/api-error.js';
import { principalOf } from '../authentication/principal.js';
import { EVIDENCE_ACCESS, type EvidenceAccess } from '../evidence/evidence-access.js';

/** Nest token of the tool-pin settings: who may accept, and the `source` of the events the API writes. */
export const MCP_TOOL_PINS = Symbol.for('@custodian/api-service/mcp-tool-pins');

export interface McpToolPinSettings {
  /** `approvals.toolDefinitionApproverGroups`: humans in these groups accept changed definitions. */
  readonly approverGroups: readonly string[];
  readonly source: EventSource;
}

export interface ToolPinView {
  readonly tool: string;
  readonly fingerprint: string;
  readonly pinnedAt: string;
  /** A changed definition waiting for a human; the tool is blocked meanwhile. */
  readonly changed?: { readonly fingerprint: string; readonly detectedAt: string; readonly description?: string };
}

export interface ToolPinListResponse {
  readonly connection: string;
  readonly tools: readonly ToolPinView[];
  /** Whether the caller may accept changed definitions. */
  readonly canAccept: boolean;
}

export interface ToolPinAcceptResponse {
  readonly connection: string;
  readonly tool: ToolPinView;
}

const HTTP_STATUS: Readonly<Record<ToolPinErrorCode, number>> = {
  TOOL_PIN_INVALID: 400,
  TOOL_PIN_NOT_FOUND: 404,
  TOOL_PIN_NOT_CHANGED: 409,
  TOOL_PIN_FINGERPRINT_MISMATCH: 409,
  TOOL_PIN_CONFLICT: 409,
};

function view(pin: ToolPin): ToolPinView {
  return { tool: pin.tool, fingerprint: pin.fingerprint, pinnedAt: pin.pinnedAt, ...(pin.changed ? { changed: { ...pin.changed } } : {}) };
}

function toApiError(error: unknown): unknown {
  if (error instanceof ToolPinError) return new ApiError(HTTP_STATUS[error.code], error.code, error.message);
  if (error instanceof EventStoreError && error.code === 'EVENT_STORE_INVALID_REQUEST') return new ApiError(400, 'TOOL_PIN_INVALID', error.message);
  if (error instanceof EventStoreError && (error.code === 'EVENT_STORE_UNAVAILABLE' || error.code === 'EVENT_STORE_CLOSED')) {
    return new ApiError(503, 'EVENT_STORE_UNAVAILABLE', 'the event store is unavailable; try again later');
  }
  return error;
}

function callerOf(req: IncomingMessage): Identity {
  const principal = principalOf(req);
  if (!principal) throw new ApiError(401, 'AUTHENTICATION_REQUIRED', 'not authenticated');
  return principal.identity;
}

function connectionOf(raw: string): string {
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(raw)) throw new ApiError(400, 'TOOL_PIN_INVALID', 'connection must be 1-128 letters, digits, ".", "_" or "-"');
  return raw;
}

/**
 * Tool-definition pins of MCP connections (stream `mcp-tools-<connection>`, @custodian/tool-pins).
 * Read by auditors and the tool-definition approvers; a changed definition is accepted by a human
 * of `approvals.toolDefinitionApproverGroups` (identity of the request), recorded as
 * `tool-definition.accepted` with old and new fingerprints; the gateway reads it the next time
 * the tool is called.
 */
@Controller('v1/mcp/connections')
export class McpToolsController {
  constructor(
    @Inject(EVENT_STORE) private readonly eventStore: EventStore,
    @Inject(EVIDENCE_ACCESS) private readonly access: EvidenceAccess,
    @Inject(MCP_TOOL_PINS) private readonly settings: McpToolPinSettings,
  ) {}

  private isApprover(caller: Identity): boolean {
    return caller.groups.some((g) => this.settings.approverGroups.includes(g));
  }

  private ledger(connection: string): ToolPinLedger {
    return new ToolPinLedger({ eventStore: this.eventStore, source: this.settings.source, connection });
  }

  /** The pins of a connection (empty when no tool was ever seen on it). */
  @Get(':connection/tools')
  async list(@Req() req: IncomingMessage, @Param('connection') connectionRaw: string): Promise<ToolPinListResponse> {
    const caller = callerOf(req);
    const connection = connectionOf(connectionRaw);
    const auditor = caller.groups.some((g) => (this.access.evidence?.auditorGroups ?? []).includes(g));
    if (!auditor && !this.isApprover(caller)) throw new ApiError(403, 'TOOL_PIN_NOT_AN_APPROVER', 'tool pins are for auditors and tool-definition approvers');
    try {
      const ledger = this.ledger(connection);
      await ledger.refresh();
      return { connection, tools: ledger.list().map(view), canAccept: caller.kind === 'human' && this.isApprover(caller) };
    } catch (error) {
      throw toApiError(error);
    }
  }

  /** A human accepts the changed definition with `fingerprint` (the one they reviewed). */
  @Post(':connection/tools/:tool/accept')
  @HttpCode(200)
  async accept(@Req() req: IncomingMessage, @Param('connection') connectionRaw: string, @Param('tool') tool: string, @Body() body: unknown): Promise<ToolPinAcceptResponse> {
    const caller = callerOf(req);
    const connection = connectionOf(connectionRaw);
    if (!this.isApprover(caller)) throw new ApiError(403, 'TOOL_PIN_NOT_AN_APPROVER', 'only approvals.toolDefinitionApproverGroups may accept a tool definition');
    if (caller.kind !== 'human') throw new ApiError(403, 'TOOL_PIN_APPROVER_NOT_HUMAN', 'a human must accept a tool definition');
    const fields = typeof body === 'object' && body !== null ? (body as { fingerprint?: unknown; justification?: unknown }) : {};
    if (typeof fields.fingerprint !== 'string' || typeof fields.justification !== 'string') {
      throw new ApiError(400, 'TOOL_PIN_INVALID', 'send { "fingerprint": "<the changed definition you reviewed>", "justification": "<why>" }');
    }
    if (tool.length === 0 || tool.length > 256) throw new ApiError(400, 'TOOL_PIN_INVALID', 'tool must be 1-256 characters');
    try {
      const pin = await this.ledger(connection).accept(tool, fields.fingerprint, caller, fields.justification);
      return { connection, tool: view(pin) };
    } catch (error) {
      throw toApiError(error);
    }
  }
}
