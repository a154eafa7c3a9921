// The demo's policy: demo agents read the shop, DELETE/UPDATE without WHERE, TRUNCATE and schema changes are
// blocked, other writes wait for a demo approver; e-mail addresses and card numbers are masked.
export const DEMO_POLICY_YAML = `# Custodian demo policy (written by \`custodian start --demo\`; edit it and it reloads).
name: custodian-demo
version: 1
defaults:
  decision: block
  message: Not permitted by the demo policy.
rules:
  - id: block-code-execution
    match:
      sql:
        flags: [dangerous-function, copy-program, copy-to-file, copy-from-file, do-block, load-library, alter-system]
    decision: block
    message: Server-side code execution and file access are blocked.
  - id: no-unbounded-deletes
    description: A DELETE or UPDATE without WHERE touches every row.
    match:
      sql:
        flags: [delete-without-where, update-without-where]
    decision: block
    message: DELETE and UPDATE without WHERE are blocked.
  - id: no-truncate
    description: TRUNCATE empties whole tables, like a DELETE without WHERE.
    match:
      sql:
        commands: [TRUNCATE]
    decision: block
    message: TRUNCATE is blocked, like DELETE without WHERE.
  - id: no-schema-changes
    match:
      sql:
        kinds: [ddl, dcl, utility]
    decision: block
    message: Schema and privilege changes are not allowed on the demo database.
  - id: agents-read
    match:
      identity: { groups: [demo-agents] }
      connections: [demo]
      sql:
        kinds: [read]
        objects: ["public.*", "pg_catalog.*"]
    decision: allow
  - id: agents-transactions
    match:
      identity: { groups: [demo-agents] }
      connections: [demo]
      sql:
        kinds: [transaction]
    decision: allow
  - id: agents-writes-need-approval
    description: Writes wait until a demo approver approves them.
    match:
      identity: { groups: [demo-agents] }
      connections: [demo]
      sql:
        kinds: [write]
        objects: ["public.*"]
    decision: require-approval
    approval:
      approverGroups: [demo-approvers]
      required: 1
      timeoutSeconds: 300
      grant: once
masking:
  - id: customer-email
    columns: ["public.customers.email"]
    strategy: partial
    keepLast: 4
  - id: pii-in-text
    detectors: [card, email, iban, ssn]
    strategy: redact
`;
