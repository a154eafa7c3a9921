// Where the API keeps its sessions read model: a SQLite file in dataDir, next to the approvals read
// model (it resumes from its checkpoint after a restart instead of re-reading the whole log).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedConfig } from '@custodian/runtime-config';

export function configuredSessionsReadModelPath(loaded: LoadedConfig): string {
  mkdirSync(loaded.config.dataDir, { recursive: true });
  return join(loaded.config.dataDir, 'sessions-api.sqlite');
}
