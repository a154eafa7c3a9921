// The topic contract: schemas/topics/*.topic.json (validated against schemas/topics/topic.schema.json)
// name the topics, their keys, values, headers, partitions, replication and retention.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { CustodianEvent } from '@custodian/event-contracts';
import { EventBusError, type BusMessage, type TopicSpec } from './event-bus.js';

export const EVENTS_TOPIC = 'custodian.events.v1';
export const DEAD_LETTER_TOPIC = 'custodian.events.dlq.v1';
export const SIEM_OCSF_TOPIC = 'custodian.siem.ocsf.v1';
/** Reserved for the evidence issue (signed checkpoints); not created yet. */
export const CHECKPOINTS_TOPIC = 'custodian.checkpoints.v1';

/** Headers of `custodian.events.v1` (and copied onto dead letters). */
export const EVENT_HEADERS = {
  id: 'custodian-event-id',
  type: 'custodian-event-type',
  schemaVersion: 'custodian-schema-version',
} as const;

export const DEAD_LETTER_HEADERS = {
  reasonCode: 'custodian-dlq-reason-code',
  reason: 'custodian-dlq-reason',
  sourceTopic: 'custodian-dlq-source-topic',
  sourcePartition: 'custodian-dlq-source-partition',
  sourceOffset: 'custodian-dlq-source-offset',
  at: 'custodian-dlq-at',
} as const;

export const SIEM_HEADERS = {
  classUid: 'class_uid',
  severityId: 'severity_id',
  eventId: EVENT_HEADERS.id,
  eventType: EVENT_HEADERS.type,
} as const;

export interface TopicHeaderDefinition {
  readonly name: string;
  readonly description: string;
  readonly required: boolean;
}

/** One file of schemas/topics. */
export interface TopicDefinition {
  readonly name: string;
  readonly status: 'active' | 'reserved';
  readonly description: string;
  readonly producedBy?: readonly string[];
  readonly consumedBy?: readonly string[];
  readonly key: { readonly description: string; readonly example?: string };
  readonly value: { readonly contentType: 'application/json'; readonly description: string; readonly schema?: string };
  readonly headers: readonly TopicHeaderDefinition[];
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly config: Readonly<Record<string, string>>;
}

const TOPIC_SCHEMA_SPECIFIER = '@custodian/schemas/topics/topic.schema.json';

let cached: readonly TopicDefinition[] | undefined;

/** Every topic definition in schemas/topics, validated against its schema; sorted by name. */
export function topicDefinitions(): readonly TopicDefinition[] {
  if (cached) return cached;
  const schemaPath = createRequire(import.meta.url).resolve(TOPIC_SCHEMA_SPECIFIER);
  const dir = dirname(schemaPath);
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  const validate = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')) as object);
  const definitions = readdirSync(dir)
    .filter((f) => f.endsWith('.topic.json'))
    .sort()
    .map((file) => {
      const data: unknown = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      if (!validate(data)) {
        const issues = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`).join('; ');
        throw new EventBusError('EVENT_BUS_INVALID_REQUEST', `schemas/topics/${file} is invalid: ${issues}`);
      }
      const definition = data as TopicDefinition;
      if (file !== `${definition.name}.topic.json`) throw new EventBusError('EVENT_BUS_INVALID_REQUEST', `schemas/topics/${file} must be named ${definition.name}.topic.json`);
      return definition;
    });
  cached = definitions;
  return definitions;
}

export function topicDefinition(name: string): TopicDefinition {
  const found = topicDefinitions().find((t) => t.name === name);
  if (!found) throw new EventBusError('EVENT_BUS_UNKNOWN_TOPIC', `no topic ${name} in schemas/topics`);
  return found;
}

export interface TopicOverrides {
  /** Partitions for every topic (default: each definition's own). */
  readonly partitions?: number;
  /** Replication factor for every topic (default: each definition's own). */
  readonly replicationFactor?: number;
  /** min.insync.replicas for every topic (default: each definition's own). */
  readonly minInSyncReplicas?: number;
}

/** What ensureTopics creates: the active topics, with deployment overrides applied. */
export function activeTopicSpecs(overrides: TopicOverrides = {}): TopicSpec[] {
  return topicDefinitions()
    .filter((t) => t.status === 'active')
    .map((t) => ({
      name: t.name,
      partitions: overrides.partitions ?? t.partitions,
      replicationFactor: overrides.replicationFactor ?? t.replicationFactor,
      config: {
        ...t.config,
        ...(overrides.minInSyncReplicas !== undefined ? { 'min.insync.replicas': String(overrides.minInSyncReplicas) } : {}),
      },
    }));
}

/** The `custodian.events.v1` message for an event: key = stream, value = envelope JSON, id/type/version headers. */
export function eventMessage(event: CustodianEvent, json: string = JSON.stringify(event)): BusMessage {
  return {
    topic: EVENTS_TOPIC,
    key: event.stream,
    value: json,
    headers: {
      [EVENT_HEADERS.id]: event.id,
      [EVENT_HEADERS.type]: event.type,
      [EVENT_HEADERS.schemaVersion]: String(event.schemaVersion),
    },
  };
}
