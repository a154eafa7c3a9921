// What a webhook receives about an approval: Custodian's generic JSON body, or a message in the
// Slack incoming-webhook format (text + Block Kit blocks). The command and its parameters are
// exactly what the gateway recorded (literal values, masked where a detector or column rule said
// so): nothing here unmasks or re-derives them. Tokens and URLs of other channels never appear.
import type { Actor } from '@custodian/event-contracts';
import type { Approval, ApprovalEvent } from '../approval.js';

export type NotificationFormat = 'generic' | 'slack';

export interface NotificationContext {
  readonly deliveryId: string;
  /** The event being notified (approval.requested, or an outcome). */
  readonly event: ApprovalEvent;
  /** The approval as its stream says, at least up to `event`. */
  readonly approval: Approval;
  /** Link to the approval in the API/dashboard (`<publicUrl>/v1/approvals/<id>`), when a public URL is configured. */
  readonly approvalUrl?: string;
}

/** The generic body (`format: generic`). */
export interface GenericApprovalNotification {
  readonly deliveryId: string;
  readonly type: ApprovalEvent['type'];
  readonly eventId: string;
  readonly occurredAt: string;
  readonly approval: {
    readonly approvalId: string;
    readonly status: 'pending' | 'granted' | 'denied' | 'expired' | 'cancelled';
    readonly sessionId: string;
    readonly commandId: string;
    /** The full command as recorded (literal values; masked where a detector or column rule said so). */
    readonly command: string;
    readonly language: string;
    /** Bound values in order (`$1` first), masked likewise; present when the command had any. */
    readonly parameters?: readonly (string | null)[];
    /** The policy version whose rule held the command. */
    readonly policy?: { readonly name: string; readonly version: number; readonly digest: string };
    /** What the approval is bound to (`sha256:…`, docs/approvals.md): a grant answers this command only. */
    readonly commandDigest?: string;
    readonly connection: { readonly name: string; readonly protocol: string };
    readonly ruleId: string;
    readonly requester: { readonly subject: string; readonly issuer: string; readonly kind: string };
    readonly approverGroups: readonly string[];
    readonly required: number;
    readonly approvals: number;
    readonly expiresAt: string;
    readonly grantScope: { readonly kind: 'once' | 'window'; readonly windowSeconds?: number };
  };
  /** Present on outcomes: who decided (granted/denied), and why. */
  readonly decision?: { readonly by?: Actor; readonly justification?: string; readonly reason?: string };
  readonly links: { readonly approval?: string; readonly cli: string };
}

function statusAfter(event: ApprovalEvent): GenericApprovalNotification['approval']['status'] {
  switch (event.type) {
    case 'approval.requested':
      return 'pending';
    case 'approval.granted':
      return event.payload.final ? 'granted' : 'pending';
    case 'approval.denied':
      return 'denied';
    case 'approval.expired':
      return 'expired';
    case 'approval.cancelled':
      return 'cancelled';
  }
}

function approvalsAt(context: NotificationContext): number {
  const { event, approval } = context;
  return event.type === 'approval.granted' ? event.payload.approvals : event.type === 'approval.requested' ? 0 : approval.approvals.length;
}

export function genericNotification(context: NotificationContext): GenericApprovalNotification {
  const { event, approval } = context;
  const r = approval.request;
  const decision =
    event.type === 'approval.granted' || event.type === 'approval.denied'
      ? { by: event.payload.approver, justification: event.payload.justification }
      : event.type === 'approval.cancelled'
        ? { reason: event.payload.reason }
        : undefined;
  return {
    deliveryId: context.deliveryId,
    type: event.type,
    eventId: event.id,
    occurredAt: event.occurredAt,
    approval: {
      approvalId: r.approvalId,
      status: statusAfter(event),
      sessionId: r.sessionId,
      commandId: r.commandId,
      command: r.command,
      language: r.language,
      ...(r.parameters ? { parameters: r.parameters } : {}),
      ...(r.policy ? { policy: r.policy } : {}),
      ...(r.commandDigest ? { commandDigest: r.commandDigest } : {}),
      connection: r.connection,
      ruleId: r.ruleId,
      requester: { subject: approval.requester.subject, issuer: approval.requester.issuer, kind: approval.requester.kind },
      approverGroups: r.approverGroups,
      required: r.required,
      approvals: approvalsAt(context),
      expiresAt: r.expiresAt,
      grantScope: r.grantScope,
    },
    ...(decision ? { decision } : {}),
    links: { ...(context.approvalUrl ? { approval: context.approvalUrl } : {}), cli: `custodian approvals show ${r.approvalId}` },
  };
}

/** Slack mrkdwn: &, < and > are control characters. */
function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** `$1 = 'value'` lines of bound parameters (null as NULL), as approvers read them. */
export function parameterLines(parameters: readonly (string | null)[] | undefined): string[] {
  return (parameters ?? []).map((value, i) => `$${i + 1} = ${value === null ? 'NULL' : `'${value.replace(/'/g, "''")}'`}`);
}

/**
 * A code block that the command cannot close early, within Slack's 3000-character section limit.
 * A longer command is cut here only: the message says so and links to the full text.
 */
function codeBlock(text: string): string {
  const limit = 2800;
  const body = text.length > limit ? `${text.slice(0, limit)}… (cut: see the approval for the full command)` : text;
  return '```' + escapeSlack(body).replace(/```/g, '`\u200b`\u200b`') + '```';
}

function headline(context: NotificationContext): string {
  const { event, approval } = context;
  const who = approval.requester.subject;
  const where = approval.request.connection.name;
  switch (event.type) {
    case 'approval.requested':
      return `Approval needed: ${who} on ${where} (rule ${approval.request.ruleId})`;
    case 'approval.granted':
      return event.payload.final ? `Approved by ${event.payload.approver.subject}: ${who} on ${where}` : `Approval ${event.payload.approvals} of ${event.payload.required} by ${event.payload.approver.subject}: ${who} on ${where}`;
    case 'approval.denied':
      return `Denied by ${event.payload.approver.subject}: ${who} on ${where}`;
    case 'approval.expired':
      return `Expired without a decision: ${who} on ${where}`;
    case 'approval.cancelled':
      return `Cancelled (${event.payload.reason}): ${who} on ${where}`;
  }
}

export interface SlackMessage {
  readonly text: string;
  readonly blocks: readonly Record<string, unknown>[];
}

/** A Slack-compatible incoming-webhook message (also accepted by Mattermost and Rocket.Chat). */
export function slackNotification(context: NotificationContext): SlackMessage {
  const { event, approval } = context;
  const r = approval.request;
  const id = r.approvalId;
  const expires = Math.floor(Date.parse(r.expiresAt) / 1000);
  const fields = [
    `*Requester*\n${escapeSlack(approval.requester.subject)} (${approval.requester.kind})`,
    `*Connection*\n${escapeSlack(r.connection.name)} (${r.connection.protocol})`,
    `*Rule*\n${escapeSlack(r.ruleId)}${r.policy ? ` (policy ${escapeSlack(r.policy.name)} v${r.policy.version})` : ''}`,
    `*Approvals*\n${approvalsAt(context)} of ${r.required} from ${escapeSlack(r.approverGroups.join(', '))}`,
    `*Grant*\n${r.grantScope.kind === 'window' ? `window of ${Math.round((r.grantScope.windowSeconds ?? 0) / 60)} min` : 'this command once'}`,
    `*Expires*\n<!date^${expires}^{date_short_pretty} {time_secs}|${r.expiresAt}>`,
  ];
  const decision =
    event.type === 'approval.granted' || event.type === 'approval.denied' ? `*Justification* (${escapeSlack(event.payload.approver.subject)}): ${escapeSlack(event.payload.justification)}` : undefined;
  const actions =
    event.type === 'approval.requested'
      ? `Decide: \`custodian approvals approve ${id} --justification "…"\` or \`custodian approvals deny ${id} --justification "…"\``
      : `\`custodian approvals show ${id}\``;
  const text = escapeSlack(headline(context));
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${text}*` } },
      { type: 'section', fields: fields.map((f) => ({ type: 'mrkdwn', text: f })) },
      { type: 'section', text: { type: 'mrkdwn', text: codeBlock([r.command, ...parameterLines(r.parameters)].join('\n')) } },
      ...(decision ? [{ type: 'section', text: { type: 'mrkdwn', text: decision } }] : []),
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: context.approvalUrl ? `${actions} · <${context.approvalUrl}|Open approval ${id}>` : `${actions} · approval ${id}` }],
      },
    ],
  };
}

export function renderNotification(format: NotificationFormat, context: NotificationContext): string {
  return JSON.stringify(format === 'slack' ? slackNotification(context) : genericNotification(context));
}
