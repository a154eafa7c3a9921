// What command.issued carries about a SQL command: the classification's shape (kinds, commands,
// objects, flags) without any literal, clipped to stay small.
import type { SqlClassification } from '@custodian/sql-classification';

const MAX_STATEMENTS = 50;
const MAX_OBJECTS = 50;

export function sqlClassificationSummary(classification: SqlClassification): Record<string, unknown> {
  if (!classification.ok) return { ok: false, error: classification.error.code };
  return {
    ok: true,
    kind: classification.kind,
    flags: classification.flags,
    statements: classification.statements.slice(0, MAX_STATEMENTS).map((statement) => ({
      command: statement.command,
      kind: statement.kind,
      objects: statement.objects.slice(0, MAX_OBJECTS).map((object) => `${object.schema === undefined ? '' : `${object.schema}.`}${object.name}`),
      flags: statement.flags,
    })),
    ...(classification.statements.length > MAX_STATEMENTS ? { statementsTruncated: true } : {}),
  };
}
