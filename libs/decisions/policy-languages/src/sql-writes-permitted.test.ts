// Issue 19 §2: the PostgreSQL adapter opens an upstream session read-only when no rule covering
// the identity on the connection could let a statement write. Cautious both ways: anything a rule
// does not bound to read/transaction kinds counts as a possible write.
import { describe, expect, it } from 'vitest';
import { parsePolicy, type PolicyContext } from '@custodian/policy';
import { identity } from '@custodian/policy/testing';
import { sqlWritesPermitted } from './index.js';

const POLICY = parsePolicy(
  `name: writes-test
rules:
  - id: readers-read
    match: { identity: { groups: [readers] }, sql: { kinds: [read, transaction] } }
    decision: allow
  - id: readers-never-write
    match: { identity: { groups: [readers] }, sql: { kinds: [write] } }
    decision: block
  - id: approvers-write-with-approval
    match: { identity: { groups: [reviewed] }, sql: { kinds: [read, write] } }
    decision: require-approval
    approval: { approverGroups: [dba], required: 1, timeoutSeconds: 30, grant: once }
  - id: sleepers
    match: { identity: { groups: [sleepers] }, sql: { functions: [pg_sleep] } }
    decision: allow
  - id: escape-hatch
    match: { identity: { groups: [escapers] }, sql: { kinds: [transaction], flags: [transaction-read-write] } }
    decision: allow
  - id: anything-on-scratch
    match: { identity: { groups: [scratchers] }, connections: [scratch-db] }
    decision: allow
  - id: shell-for-readers
    match: { identity: { groups: [readers] }, shell: { programs: [ls] } }
    decision: allow
`,
  'writes-test.yaml',
);

function on(groups: readonly string[], connection = 'orders-prod'): PolicyContext {
  return { identity: identity('someone', groups), connection, protocol: 'postgres' };
}

describe('sqlWritesPermitted', () => {
  it('is false when every rule covering the identity is a block or allows read/transaction kinds only', () => {
    expect(sqlWritesPermitted(POLICY, on(['readers']))).toBe(false);
    // No rule at all: nothing can write (the connection is refused anyway).
    expect(sqlWritesPermitted(POLICY, on(['nobody']))).toBe(false);
    // A rule on another connection does not count.
    expect(sqlWritesPermitted(POLICY, on(['readers', 'scratchers']))).toBe(false);
  });

  it('is true for a write kind (approval counts), a rule without kinds, a rule without an SQL block, or one naming transaction-read-write', () => {
    expect(sqlWritesPermitted(POLICY, on(['reviewed']))).toBe(true);
    expect(sqlWritesPermitted(POLICY, on(['sleepers']))).toBe(true);
    expect(sqlWritesPermitted(POLICY, on(['scratchers'], 'scratch-db'))).toBe(true);
    expect(sqlWritesPermitted(POLICY, on(['escapers']))).toBe(true);
  });
});
