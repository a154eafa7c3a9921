// The `approvals` section of the configuration → ApiModule's approvals options: the read model in
// dataDir, webhooks with their URLs and signing secrets resolved (at start-up, never printed).
import { mkdirSync } from 'node:fs';
import { NotificationConfigError, approvalReadModelPath, checkChannels, type WebhookChannel } from '@custodian/approvals';
import { ConfigError, resolveSecret, type LoadedConfig } from '@custodian/runtime-config';
import type { ApiApprovalsOptions } from '../api.module.js';

export interface ConfiguredApprovalsOptions {
  /** Environment for `fromEnv` secret references (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** Throws ConfigError (exit 2) for an unresolvable secret reference or an unusable webhook. */
export function configuredApprovals(loaded: LoadedConfig, options: ConfiguredApprovalsOptions = {}): ApiApprovalsOptions {
  const { approvals, dataDir } = loaded.config;
  if (approvals.readModel === 'file') mkdirSync(dataDir, { recursive: true });
  const secrets = { baseDir: loaded.baseDir, ...(options.env ? { env: options.env } : {}) };
  const { notifications, expirySweep } = approvals;
  const channels: WebhookChannel[] = notifications.webhooks.map((webhook) => ({
    name: webhook.name,
    url: resolveSecret(webhook.url, secrets),
    format: webhook.format,
    ...(webhook.secret ? { secret: resolveSecret(webhook.secret, secrets) } : {}),
    ...(webhook.events ? { events: webhook.events } : {}),
  }));
  try {
    checkChannels(channels);
  } catch (error) {
    if (error instanceof NotificationConfigError) throw new ConfigError('CONFIG_INVALID', `approvals.notifications.webhooks: ${error.message}`);
    throw error;
  }
  return {
    readModelPath: approvalReadModelPath(dataDir, 'api', approvals.readModel),
    notifications: {
      channels,
      timeoutMs: Math.round(notifications.timeoutSeconds * 1000),
      retry: {
        maxAttempts: notifications.retry.maxAttempts,
        initialDelayMs: Math.round(notifications.retry.initialDelaySeconds * 1000),
        maxDelayMs: Math.round(notifications.retry.maxDelaySeconds * 1000),
      },
      ...(approvals.publicUrl ? { publicUrl: approvals.publicUrl } : {}),
    },
    toolDefinitionApproverGroups: approvals.toolDefinitionApproverGroups,
    sweep: expirySweep.enabled ? { intervalMs: expirySweep.intervalSeconds * 1000, graceMs: expirySweep.graceSeconds * 1000 } : false,
  };
}
