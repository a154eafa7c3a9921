// Every SQL string of the classifier's bypass corpus, decided under the sample policy by several
// identities: not one dangerous statement may be allowed.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyFile, type CompiledPolicy, type PolicyContext } from '@custodian/policy';
import { identity, SAMPLE_POLICY_PATH } from '@custodian/policy/testing';
import { classifySqlSync, type SqlFlag, type SqlKind, type SqlStatementClassification } from '@custodian/sql-classification';
import { BYPASS_CORPUS } from '@custodian/sql-classification/corpus';
import { decideSqlSync, GUARDED_SQL_FLAGS, sqlLanguage } from './index.js';

const DANGEROUS_KINDS: ReadonlySet<SqlKind> = new Set(['write', 'ddl', 'dcl', 'utility']);

/** Flags that make a statement dangerous even when its kind is `read` or `transaction`. */
const DANGEROUS_FLAGS: ReadonlySet<SqlFlag> = new Set<SqlFlag>([
  ...GUARDED_SQL_FLAGS,
  'update-without-where',
  'delete-without-where',
  'constant-true-where',
  'dml-in-cte',
  'nested-dml',
  'side-effect-function',
  'create-function',
  'create-trigger',
  'create-rule',
  'create-extension',
  'password',
  'row-security-change',
  'row-lock',
  'select-into',
  'notify',
]);

/** Flags describing what a statement would do to rows; a plan-only EXPLAIN does none of it. */
const ROW_EFFECT_FLAGS: ReadonlySet<SqlFlag> = new Set<SqlFlag>(['update-without-where', 'delete-without-where', 'constant-true-where']);

function isDangerous(statement: SqlStatementClassification): boolean {
  const planOnly = statement.command === 'EXPLAIN' && !statement.flags.includes('explain-analyze');
  return DANGEROUS_KINDS.has(statement.kind) || statement.flags.some((flag) => DANGEROUS_FLAGS.has(flag) && !(planOnly && ROW_EFFECT_FLAGS.has(flag)));
}

const CONTEXTS: readonly PolicyContext[] = [
  { identity: identity('agent-7', ['analysts']), connection: 'orders-prod', protocol: 'postgres' },
  { identity: identity('alice', ['analysts', 'dba'], 'human'), connection: 'orders-prod', protocol: 'postgres' },
  { identity: identity('svc-etl', ['etl'], 'service'), connection: 'orders-prod', protocol: 'postgres' },
  { identity: identity('agent-7', ['analysts']), connection: 'orders-staging', protocol: 'postgres' },
];

let policy: CompiledPolicy;
beforeAll(async () => {
  await sqlLanguage.ready();
  policy = loadPolicyFile(SAMPLE_POLICY_PATH);
});

describe('bypass corpus under the sample policy', () => {
  it('has the corpus to run', () => {
    expect(BYPASS_CORPUS.length).toBeGreaterThanOrEqual(200);
  });

  it('never allows a statement the corpus or the classifier marks dangerous', () => {
    const violations: string[] = [];
    let dangerousStatements = 0;
    let allowedSafe = 0;
    for (const testCase of BYPASS_CORPUS) {
      const expectation = testCase.expect;
      const corpusSaysDangerous =
        !expectation.ok || DANGEROUS_KINDS.has(expectation.kind) || (expectation.flags ?? []).some((flag) => DANGEROUS_FLAGS.has(flag));
      for (const context of CONTEXTS) {
        const decision = decideSqlSync(policy, context, testCase.sql);
        const who = `${context.identity.subject}@${context.connection}`;
        if (corpusSaysDangerous && decision.decision === 'allow') violations.push(`${testCase.name} (${who}): allowed by ${decision.ruleId}`);
        const { classification } = decision;
        if (decision.language !== 'sql' || !classification.ok) {
          if (decision.decision !== 'block') violations.push(`${testCase.name} (${who}): unclassifiable but ${decision.decision}`);
          continue;
        }
        classification.statements.forEach((statement, index) => {
          const unit = decision.units[index];
          const dangerous = isDangerous(statement);
          if (!dangerous) {
            if (unit?.decision === 'allow') allowedSafe++;
            return;
          }
          dangerousStatements++;
          if (unit === undefined || unit.decision === 'allow') violations.push(`${testCase.name} (${who}): statement ${index + 1} ${statement.command} allowed`);
          if (decision.decision === 'allow') violations.push(`${testCase.name} (${who}): overall allow despite statement ${index + 1}`);
        });
        // Writes may be held for approval; DDL, DCL and utility never even get that far.
        if (['ddl', 'dcl', 'utility'].includes(classification.kind) && decision.decision !== 'block') {
          violations.push(`${testCase.name} (${who}): ${classification.kind} decided ${decision.decision}`);
        }
      }
    }
    expect(violations).toEqual([]);
    // The run exercised both sides: many dangerous statements, and safe reads that were allowed.
    expect(dangerousStatements).toBeGreaterThan(500);
    expect(allowedSafe).toBeGreaterThan(20);
  });

  it('blocks every corpus entry the classifier rejects, with the error code as the reason', () => {
    const failures = BYPASS_CORPUS.filter((testCase) => !testCase.expect.ok);
    expect(failures.length).toBeGreaterThan(10);
    for (const testCase of failures) {
      const decision = decideSqlSync(policy, CONTEXTS[0]!, testCase.sql);
      const code = testCase.expect.ok ? '' : testCase.expect.code;
      expect({ name: testCase.name, decision: decision.decision, ruleId: decision.ruleId, reason: decision.reason.split(':')[0] }).toEqual({
        name: testCase.name,
        decision: 'block',
        ruleId: null,
        reason: code,
      });
    }
  });

  it('decides every corpus case the same through the caches (statement text, applicable rules) as without them', () => {
    // Frozen identities are what the gateway hands over (the event factory freezes them): their
    // applicable rules are cached per policy. Each case runs twice, so the second is a cache hit.
    // One identity object per subject: agent-7 on orders-prod and on orders-staging share it, so
    // the cache must tell the connections apart.
    const frozen = new Map<string, PolicyContext['identity']>();
    const frozenContexts = CONTEXTS.map((context) => {
      const key = JSON.stringify(context.identity);
      if (!frozen.has(key)) frozen.set(key, Object.freeze({ ...context.identity, groups: Object.freeze([...context.identity.groups]) }));
      return { ...context, identity: frozen.get(key)! };
    });
    expect(frozenContexts[0]!.identity).toBe(frozenContexts[3]!.identity);
    const mismatches: string[] = [];
    let compared = 0;
    for (const testCase of BYPASS_CORPUS) {
      for (const [i, context] of frozenContexts.entries()) {
        const uncached = policy.decideClassification(sqlLanguage, CONTEXTS[i]!, classifySqlSync(testCase.sql));
        for (const round of [1, 2]) {
          const cached = decideSqlSync(policy, context, testCase.sql);
          compared++;
          try {
            expect(cached).toEqual(uncached);
          } catch {
            mismatches.push(`${testCase.name} (${context.identity.subject}@${context.connection}, round ${round}): ${cached.decision} vs ${uncached.decision}`);
          }
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(compared).toBe(BYPASS_CORPUS.length * CONTEXTS.length * 2);
  });
});
