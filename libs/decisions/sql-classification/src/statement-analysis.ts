import { SqlClassificationError } from './errors.js';
import { functionRisk } from './function-catalog.js';
import { parsePostgres } from './postgres-parser.js';
import {
  arrayField,
  field,
  isRecord,
  recordField,
  stringField,
  stringList,
  unwrapNode,
  type JsonRecord,
} from './json-node.js';
import {
  mostPrivilegedKind,
  type SqlAccess,
  type SqlFlag,
  type SqlKind,
  type SqlObject,
  type SqlStatementClassification,
} from './sql-classification.js';
import { isConstantTrue } from './tautology.js';

/** Deeper trees are refused: JavaScript recursion must stay bounded on hostile input. */
const MAX_DEPTH = 1_500;

interface WalkContext {
  /** Access recorded for relations met in this part of the tree. */
  readonly access: SqlAccess;
  /** CTE names visible here: unqualified reads of these are not tables. */
  readonly ctes: ReadonlySet<string>;
  /** Inside another statement (a CTE body, a subquery, EXPLAIN's target…). */
  readonly nested: boolean;
  readonly inCte: boolean;
  readonly depth: number;
}

const TOP: WalkContext = { access: 'read', ctes: new Set(), nested: false, inCte: false, depth: 0 };

/** Statements prepared earlier in the session, by name (only looked up). */
export type PreparedStatements = Pick<ReadonlyMap<string, SqlStatementClassification>, 'get'>;

/** Classifies one top-level statement of a parse tree. */
export class StatementAnalysis {
  private readonly objects = new Map<string, SqlObject>();
  private readonly functions = new Set<string>();
  private readonly operators = new Set<string>();
  private readonly attributeNames = new Set<string>();
  private readonly typeNames = new Set<string>();
  private readonly flags = new Set<SqlFlag>();
  private readonly kinds: SqlKind[] = [];
  private command = 'UNKNOWN';
  private nodeType = 'unknown';
  private preparedName: string | undefined;
  private deallocates: string | undefined;

  private readonly top0: WalkContext;

  constructor(
    private readonly prepared: PreparedStatements,
    depth: number,
  ) {
    this.top0 = { ...TOP, depth };
  }

  /** `depth` carries the nesting of an enclosing statement (EXPLAIN, PREPARE…) so the bound holds overall. */
  static classify(statement: unknown, prepared: PreparedStatements, depth = 0): SqlStatementClassification {
    if (depth > MAX_DEPTH) throw new SqlClassificationError('SQL_TOO_COMPLEX', `statement nests deeper than ${MAX_DEPTH} levels`);
    const analysis = new StatementAnalysis(prepared, depth);
    analysis.top(statement);
    return analysis.result();
  }

  private result(): SqlStatementClassification {
    const classification: SqlStatementClassification = {
      kind: mostPrivilegedKind(this.kinds),
      command: this.command,
      objects: [...this.objects.values()],
      functions: [...this.functions].sort(),
      flags: [...this.flags].sort(),
      nodeType: this.nodeType,
    };
    if (this.operators.size > 0) classification.operators = [...this.operators].sort();
    if (this.attributeNames.size > 0) classification.attributeNames = [...this.attributeNames].sort();
    if (this.typeNames.size > 0) classification.typeNames = [...this.typeNames].sort();
    if (this.preparedName !== undefined) classification.preparedName = this.preparedName;
    if (this.deallocates !== undefined) classification.deallocates = this.deallocates;
    return classification;
  }

  private set(kind: SqlKind, command: string): void {
    this.kinds.push(kind);
    this.command = command;
  }

  private top(statement: unknown): void {
    const node = unwrapNode(statement);
    if (node === undefined) {
      this.nodeType = 'unknown';
      this.set('utility', 'UNKNOWN');
      this.flags.add('unknown-statement');
      return;
    }
    const [type, f] = node;
    this.nodeType = type;
    this.classifyStatement(type, f);
  }

  // ---------------------------------------------------------------------------------------------
  // Top-level statements: every node type gets a deliberate kind; the default is `utility`.

  private classifyStatement(type: string, f: JsonRecord): void {
    const top = this.top0;
    const ddl: WalkContext = { ...top, access: 'ddl' };
    switch (type) {
      case 'SelectStmt':
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        this.command = COMMAND_OF_DML[type] ?? type;
        this.kinds.push(type === 'SelectStmt' ? 'read' : 'write');
        this.visitNode(type, f, top);
        if (type === 'SelectStmt' && f['intoClause'] !== undefined) {
          this.kinds.push('ddl');
          this.command = 'SELECT INTO';
        }
        return;

      case 'ExplainStmt': {
        const analyze = arrayField(f, 'options').some((option) => {
          const def = unwrapNode(option);
          return def?.[0] === 'DefElem' && stringField(def[1], 'defname') === 'analyze' && defElemIsTrue(def[1]);
        });
        const inner = StatementAnalysis.classify(f['query'], this.prepared, top.depth + 1);
        this.merge(inner);
        if (analyze) {
          // EXPLAIN ANALYZE executes its statement: it is that statement.
          this.flags.add('explain-analyze');
          this.set(inner.kind, inner.command);
        } else {
          // Plain EXPLAIN only plans; objects and flags stay visible to the policy.
          this.kinds.length = 0;
          this.set('read', 'EXPLAIN');
        }
        return;
      }

      case 'PrepareStmt': {
        const inner = StatementAnalysis.classify(f['query'], this.prepared, top.depth + 1);
        this.merge(inner);
        this.flags.add('prepare');
        this.preparedName = stringField(f, 'name');
        this.set(inner.kind, 'PREPARE');
        return;
      }
      case 'ExecuteStmt':
        this.visitExecute(f, top);
        this.command = 'EXECUTE';
        return;
      case 'DeallocateStmt':
        // `DEALLOCATE ALL` has no name; a named one drops that statement only.
        this.deallocates = f['isall'] === true ? '*' : (stringField(f, 'name') ?? '*');
        return this.set('utility', 'DEALLOCATE');

      case 'DeclareCursorStmt': {
        const inner = StatementAnalysis.classify(f['query'], this.prepared, top.depth + 1);
        this.merge(inner);
        this.flags.add('cursor');
        return this.set(inner.kind, 'DECLARE CURSOR');
      }
      case 'FetchStmt':
        this.flags.add('cursor');
        return this.set('read', f['ismove'] === true ? 'MOVE' : 'FETCH');
      case 'ClosePortalStmt':
        this.flags.add('cursor');
        return this.set('read', 'CLOSE');

      case 'VariableShowStmt':
        return this.set('read', 'SHOW');
      case 'VariableSetStmt':
        return this.classifySet(f, 'SET');
      case 'AlterSystemStmt':
        this.flags.add('alter-system');
        this.set('utility', 'ALTER SYSTEM');
        return;
      case 'DiscardStmt':
        // DISCARD ALL includes DEALLOCATE ALL.
        if (f['target'] === 'DISCARD_ALL') this.deallocates = '*';
        return this.set('utility', 'DISCARD');
      case 'LoadStmt':
        this.flags.add('load-library');
        return this.set('utility', 'LOAD');
      case 'DoStmt':
        this.flags.add('do-block');
        return this.set('utility', 'DO');

      case 'TransactionStmt':
        return this.classifyTransaction(f);
      case 'ConstraintsSetStmt':
        return this.set('transaction', 'SET CONSTRAINTS');

      case 'CopyStmt':
        return this.classifyCopy(f);
      case 'TruncateStmt':
        this.set('write', 'TRUNCATE');
        return this.visit(f['relations'], { ...top, access: 'write' });
      case 'LockStmt':
        this.set('write', 'LOCK');
        return this.visit(f['relations'], { ...top, access: 'write' });
      case 'RefreshMatViewStmt':
        this.set('write', 'REFRESH MATERIALIZED VIEW');
        return this.visitRelation(f['relation'], 'write', top);
      case 'CallStmt':
        this.set('write', 'CALL');
        return this.visitFuncCall(recordField(f, 'funccall'), top);
      case 'ListenStmt':
        this.flags.add('listen');
        return this.set('read', 'LISTEN');
      case 'UnlistenStmt':
        this.flags.add('listen');
        return this.set('read', 'UNLISTEN');
      case 'NotifyStmt':
        this.flags.add('notify');
        return this.set('write', 'NOTIFY');

      case 'VacuumStmt':
        this.set('utility', f['is_vacuumcmd'] === true ? 'VACUUM' : 'ANALYZE');
        return this.visit(f['rels'], { ...top, access: 'write' });
      case 'ClusterStmt':
        this.set('utility', 'CLUSTER');
        return this.visitRelation(f['relation'], 'write', top);
      case 'ReindexStmt':
        this.set('utility', 'REINDEX');
        return this.visitRelation(f['relation'], 'write', top);
      case 'CheckPointStmt':
        return this.set('utility', 'CHECKPOINT');

      case 'CreateTableAsStmt': {
        const matview = stringField(f, 'objtype') === 'OBJECT_MATVIEW';
        this.set('ddl', matview ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS');
        this.visitRelation(field(recordField(f, 'into'), 'rel'), 'ddl', top);
        return this.visit(f['query'], { ...top, nested: true });
      }
      case 'ViewStmt':
        this.set('ddl', 'CREATE VIEW');
        this.visitRelation(f['view'], 'ddl', top);
        return this.visit(f['query'], { ...top, nested: true });
      case 'CreateFunctionStmt': {
        this.flags.add('create-function');
        this.set('ddl', f['is_procedure'] === true ? 'CREATE PROCEDURE' : 'CREATE FUNCTION');
        const name = stringList(arrayField(f, 'funcname'));
        this.addObject(name, 'ddl');
        // Parameter defaults and SQL-standard bodies (BEGIN ATOMIC … END) are parse trees, and a
        // LANGUAGE sql body given as a string is parsed here; other languages stay opaque
        // (flag create-function tells the policy).
        this.visit(f['parameters'], ddl);
        this.visit(f['sql_body'], { ...top, nested: true });
        this.visitSqlFunctionBody(arrayField(f, 'options'), top);
        return;
      }
      case 'CreateTrigStmt':
      case 'CreateEventTrigStmt':
        this.flags.add('create-trigger');
        this.set('ddl', type === 'CreateTrigStmt' ? 'CREATE TRIGGER' : 'CREATE EVENT TRIGGER');
        this.visitRelation(f['relation'], 'ddl', top);
        return this.visit(f['whenClause'], top);
      case 'RuleStmt':
        this.flags.add('create-rule');
        this.set('ddl', 'CREATE RULE');
        this.visitRelation(f['relation'], 'ddl', top);
        return this.visit(f['actions'], { ...top, nested: true });
      case 'CreateExtensionStmt':
        this.flags.add('create-extension');
        return this.set('ddl', 'CREATE EXTENSION');
      case 'AlterTableStmt':
        for (const cmd of arrayField(f, 'cmds')) {
          const subtype = stringField(unwrapNode(cmd)?.[1], 'subtype');
          if (subtype !== undefined && ROW_SECURITY_SUBTYPES.has(subtype)) this.flags.add('row-security-change');
        }
        this.set('ddl', objectCommand('ALTER', stringField(f, 'objtype')));
        return this.visitGeneric(f, ddl);
      case 'DropStmt':
        return this.classifyDrop(f);
      case 'CreateStmt':
        this.set('ddl', 'CREATE TABLE');
        return this.visitGeneric(f, ddl);
      case 'CreateForeignTableStmt':
        this.set('ddl', 'CREATE FOREIGN TABLE');
        return this.visitGeneric(f, ddl);
      case 'IndexStmt':
        this.set('ddl', 'CREATE INDEX');
        return this.visitGeneric(f, ddl);
      case 'RenameStmt':
        this.set('ddl', objectCommand('ALTER', stringField(f, 'renameType')));
        return this.visitGeneric(f, ddl);
      case 'CommentStmt':
        this.set('ddl', 'COMMENT');
        return;
      case 'SecLabelStmt':
        this.set('dcl', 'SECURITY LABEL');
        return;

      case 'GrantStmt':
        this.set('dcl', f['is_grant'] === true ? 'GRANT' : 'REVOKE');
        if (stringField(f, 'objtype') === 'OBJECT_TABLE') this.visit(f['objects'], ddl);
        return;
      case 'GrantRoleStmt':
        return this.set('dcl', f['is_grant'] === true ? 'GRANT' : 'REVOKE');
      case 'CreateRoleStmt':
      case 'AlterRoleStmt':
        if (hasPasswordOption(arrayField(f, 'options'))) this.flags.add('password');
        return this.set('dcl', type === 'CreateRoleStmt' ? 'CREATE ROLE' : 'ALTER ROLE');
      case 'AlterRoleSetStmt': {
        const set = recordField(f, 'setstmt');
        if (set !== undefined) this.classifySet(set, 'ALTER ROLE SET');
        this.kinds.push('dcl');
        this.command = 'ALTER ROLE SET';
        return;
      }
      case 'AlterDatabaseSetStmt': {
        const set = recordField(f, 'setstmt');
        if (set !== undefined) this.classifySet(set, 'ALTER DATABASE SET');
        this.kinds.push('ddl');
        this.command = 'ALTER DATABASE SET';
        return;
      }
      case 'CreateUserMappingStmt':
      case 'AlterUserMappingStmt':
        if (hasPasswordOption(arrayField(f, 'options'))) this.flags.add('password');
        return this.set('dcl', type === 'CreateUserMappingStmt' ? 'CREATE USER MAPPING' : 'ALTER USER MAPPING');
      case 'CreatePolicyStmt':
      case 'AlterPolicyStmt':
        this.flags.add('row-security-change');
        this.set('dcl', type === 'CreatePolicyStmt' ? 'CREATE POLICY' : 'ALTER POLICY');
        this.visitRelation(f['table'], 'ddl', top);
        this.visit(f['qual'], top);
        return this.visit(f['with_check'], top);
    }
    const simple = SIMPLE_STATEMENTS[type];
    if (simple !== undefined) {
      this.set(simple.kind, simple.command);
      if (simple.kind === 'ddl') this.visitGeneric(f, ddl);
      return;
    }
    // Not a statement this classifier knows: the most privileged kind, never `read`.
    this.flags.add('unknown-statement');
    this.set('utility', type);
  }

  private classifySet(f: JsonRecord, command: string): void {
    const name = (stringField(f, 'name') ?? '').toLowerCase();
    const kind = stringField(f, 'kind');
    const verb = kind === 'VAR_RESET' || kind === 'VAR_RESET_ALL' ? 'RESET' : command;
    if (name === 'transaction' || name === 'session characteristics') {
      if (hasReadWriteOption(arrayField(f, 'args'))) this.flags.add('transaction-read-write');
      this.set(name === 'transaction' ? 'transaction' : 'utility', name === 'transaction' ? 'SET TRANSACTION' : 'SET SESSION CHARACTERISTICS');
      return;
    }
    if (name === 'role') {
      this.flags.add('set-role');
      return this.set('dcl', `${verb} ROLE`);
    }
    if (name === 'session_authorization') {
      this.flags.add('set-session-authorization');
      return this.set('dcl', `${verb} SESSION AUTHORIZATION`);
    }
    if (name === 'search_path') this.flags.add('set-search-path');
    // The PostgreSQL gateway names each session's upstream connection (custodian/<session id>) so that pg_stat_activity attributes it.
    if (name === 'application_name') this.flags.add('set-application-name');
    if (PARSER_DIVERGENCE_SETTINGS.has(name) || kind === 'VAR_RESET_ALL') this.flags.add('parser-divergence-setting');
    if ((name === 'transaction_read_only' || name === 'default_transaction_read_only') && !argsAreTrue(arrayField(f, 'args'))) {
      this.flags.add('transaction-read-write');
    }
    this.set('utility', verb);
  }

  private classifyTransaction(f: JsonRecord): void {
    const kind = stringField(f, 'kind') ?? '';
    const command = TRANSACTION_COMMANDS[kind] ?? 'TRANSACTION';
    if (TRANSACTION_ENDING.has(kind)) this.flags.add('transaction-end');
    if (hasReadWriteOption(arrayField(f, 'options'))) this.flags.add('transaction-read-write');
    this.set('transaction', command);
  }

  private classifyCopy(f: JsonRecord): void {
    const top = this.top0;
    this.flags.add('copy');
    const from = f['is_from'] === true;
    const target = stringField(f, 'filename');
    this.visitRelation(f['relation'], from ? 'write' : 'read', top);
    this.visit(f['query'], { ...top, nested: true });
    this.visit(f['whereClause'], top);
    if (target !== undefined) {
      // Server-side files and programs run with the server's privileges.
      this.flags.add(f['is_program'] === true ? 'copy-program' : from ? 'copy-from-file' : 'copy-to-file');
      this.set('utility', from ? 'COPY FROM' : 'COPY TO');
      return;
    }
    this.set(from ? 'write' : 'read', from ? 'COPY FROM' : 'COPY TO');
  }

  private classifyDrop(f: JsonRecord): void {
    const objtype = stringField(f, 'removeType');
    this.set('ddl', objectCommand('DROP', objtype));
    if (objtype !== undefined && RELATION_OBJECT_TYPES.has(objtype)) {
      for (const object of arrayField(f, 'objects')) {
        const list = unwrapNode(object);
        if (list?.[0] === 'List') this.addObject(stringList(arrayField(list[1], 'items')), 'ddl');
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Tree walking: relations, function calls and nested statements anywhere in the tree.

  private visit(value: unknown, ctx: WalkContext): void {
    if (ctx.depth > MAX_DEPTH) {
      throw new SqlClassificationError('SQL_TOO_COMPLEX', `statement nests deeper than ${MAX_DEPTH} levels`);
    }
    if (Array.isArray(value)) {
      for (const item of value) this.visit(item, ctx);
      return;
    }
    if (!isRecord(value)) return;
    const node = unwrapNode(value);
    if (node !== undefined) {
      this.visitNode(node[0], node[1], { ...ctx, depth: ctx.depth + 1 });
      return;
    }
    // A struct stored without its node wrapper.
    if (typeof value['relname'] === 'string') return this.addRangeVar(value, ctx.access, ctx);
    if (Array.isArray(value['funcname']) && 'funcformat' in value) return this.visitFuncCall(value, ctx);
    this.visitGeneric(value, { ...ctx, depth: ctx.depth + 1 });
  }

  private visitGeneric(fields: JsonRecord, ctx: WalkContext): void {
    for (const key of Object.keys(fields)) this.visit(fields[key], ctx);
  }

  private visitNode(type: string, f: JsonRecord, ctx: WalkContext): void {
    switch (type) {
      case 'RangeVar':
        return this.addRangeVar(f, ctx.access, ctx);
      case 'FuncCall':
        return this.visitFuncCall(f, ctx);
      case 'A_Expr':
        this.addOperator(f);
        return this.visitGeneric(f, ctx);
      case 'ColumnRef':
        this.addAttributeName(arrayField(f, 'fields'), 2);
        return;
      case 'A_Indirection':
        this.addAttributeName(arrayField(f, 'indirection'), 1);
        return this.visitGeneric(f, ctx);
      case 'TypeCast': {
        // A cast can run a cast function, a domain's CHECK constraints and the type's input function.
        const name = stringList(arrayField(recordField(f, 'typeName'), 'names'));
        if (name.length > 0) this.typeNames.add(name.join('.'));
        return this.visitGeneric(f, ctx);
      }
      case 'SelectStmt':
        return this.visitSelect(f, ctx);
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return this.visitDml(type, f, ctx);
      case 'ExecuteStmt':
        return this.visitExecute(f, ctx);
      case 'DoStmt':
        this.flags.add('do-block');
        this.kinds.push('utility');
        return;
      default:
        if (type.endsWith('Stmt')) {
          // A statement inside another (CREATE SCHEMA … CREATE TABLE, rule actions): classify it
          // as a statement of its own and take on its kind, objects and flags.
          this.merge(StatementAnalysis.classify({ [type]: f }, this.prepared, ctx.depth + 1));
          return;
        }
        return this.visitGeneric(f, ctx);
    }
  }

  private visitSelect(f: JsonRecord, outer: WalkContext): void {
    let ctx: WalkContext = { ...outer, access: 'read', nested: true };
    ctx = this.visitWith(recordField(f, 'withClause'), ctx);
    const into = recordField(f, 'intoClause');
    if (into !== undefined) {
      this.flags.add('select-into');
      this.kinds.push('ddl');
      this.visitRelation(into['rel'], 'ddl', ctx);
    }
    // Set operations keep their branches as unwrapped SelectStmts.
    for (const branch of ['larg', 'rarg']) {
      const arm = recordField(f, branch);
      if (arm !== undefined) this.visitSelect(arm, ctx);
    }
    const locking = arrayField(f, 'lockingClause');
    if (locking.length > 0) {
      this.flags.add('row-lock');
      this.kinds.push('write');
    }
    this.visit(f['fromClause'], locking.length > 0 ? { ...ctx, access: 'write' } : ctx);
    this.checkWhere(f['whereClause']);
    for (const key of Object.keys(f)) {
      if (key === 'withClause' || key === 'intoClause' || key === 'larg' || key === 'rarg' || key === 'fromClause') continue;
      this.visit(f[key], ctx);
    }
  }

  private visitDml(type: string, f: JsonRecord, outer: WalkContext): void {
    if (outer.nested) this.flags.add(outer.inCte ? 'dml-in-cte' : 'nested-dml');
    this.kinds.push('write');
    let ctx: WalkContext = { ...outer, access: 'read', nested: true };
    ctx = this.visitWith(recordField(f, 'withClause'), ctx);
    const columns = type === 'InsertStmt' ? targetNames(arrayField(f, 'cols')) : type === 'UpdateStmt' ? targetNames(arrayField(f, 'targetList')) : [];
    this.visitRelation(f['relation'], 'write', ctx, columns);
    if (type === 'UpdateStmt' || type === 'DeleteStmt') {
      const where = f['whereClause'];
      if (where === undefined) this.flags.add(type === 'UpdateStmt' ? 'update-without-where' : 'delete-without-where');
      this.checkWhere(where);
    }
    if (type === 'MergeStmt') this.checkWhere(f['joinCondition']);
    for (const key of Object.keys(f)) {
      if (key === 'withClause' || key === 'relation') continue;
      this.visit(f[key], ctx);
    }
  }

  /** Walks CTE bodies with the names each may see; returns the context for the main body. */
  private visitWith(withClause: JsonRecord | undefined, ctx: WalkContext): WalkContext {
    if (withClause === undefined) return ctx;
    const ctes = arrayField(withClause, 'ctes')
      .map((cte) => unwrapNode(cte))
      .filter((node): node is [string, JsonRecord] => node?.[0] === 'CommonTableExpr')
      .map(([, cte]) => cte);
    const names = ctes.map((cte) => stringField(cte, 'ctename') ?? '');
    const recursive = withClause['recursive'] === true;
    ctes.forEach((cte, index) => {
      const visible = new Set([...ctx.ctes, ...(recursive ? names : names.slice(0, index))]);
      this.visit(cte['ctequery'], { ...ctx, ctes: visible, nested: true, inCte: true });
    });
    return { ...ctx, ctes: new Set([...ctx.ctes, ...names]) };
  }

  private visitExecute(f: JsonRecord, ctx: WalkContext): void {
    this.flags.add('execute');
    const name = stringField(f, 'name') ?? '';
    const known = this.prepared.get(name);
    if (known === undefined) {
      this.flags.add('unknown-prepared-statement');
      this.kinds.push('utility');
    } else {
      this.merge(known);
      this.kinds.push(known.kind);
      this.flags.delete('prepare');
    }
    this.visit(f['params'], ctx);
  }

  /**
   * The operator an expression names (`##`, `OPERATOR(public.##)`); BETWEEN runs the comparison
   * operators. Which function an operator runs is known only to the catalog: the gateway resolves it.
   */
  private addOperator(f: JsonRecord): void {
    const name = stringList(arrayField(f, 'name'));
    if (name.length === 0) return;
    const kind = stringField(f, 'kind') ?? '';
    if (kind.startsWith('AEXPR_BETWEEN') || kind.startsWith('AEXPR_NOT_BETWEEN')) {
      this.operators.add('<=');
      this.operators.add('>=');
      return;
    }
    this.operators.add(name.join('.'));
  }

  /**
   * `c.touch_row` (and `(c).touch_row`) is a column, or, when no such column exists, a call of the
   * function `touch_row(c)`: attribute notation. The last name of a qualified column reference is
   * recorded so the gateway can look for one-argument functions of that name.
   */
  private addAttributeName(fields: readonly unknown[], minimum: number): void {
    if (fields.length < minimum) return;
    const last = unwrapNode(fields[fields.length - 1]);
    if (last?.[0] !== 'String') return;
    const name = stringField(last[1], 'sval');
    if (name !== undefined && name !== '') this.attributeNames.add(name);
  }

  private visitFuncCall(f: JsonRecord | undefined, ctx: WalkContext): void {
    if (f === undefined) return;
    const name = stringList(arrayField(f, 'funcname'));
    this.functions.add(name.join('.'));
    switch (functionRisk(name)) {
      case 'dangerous':
        this.flags.add('dangerous-function');
        this.kinds.push('utility');
        break;
      case 'side-effect':
        this.flags.add('side-effect-function');
        if (name[name.length - 1] === 'pg_notify') this.flags.add('notify');
        this.kinds.push('write');
        break;
      case 'unrecognised':
        this.flags.add('unrecognised-function');
        break;
      case 'known-read-only':
        break;
    }
    for (const key of Object.keys(f)) {
      if (key !== 'funcname') this.visit(f[key], ctx);
    }
  }

  /** `LANGUAGE sql AS '…'`: the body is SQL text; its statements count as nested statements. */
  private visitSqlFunctionBody(options: readonly unknown[], top: WalkContext): void {
    let language: string | undefined;
    let body: string | undefined;
    for (const option of options) {
      const def = unwrapNode(option);
      if (def?.[0] !== 'DefElem') continue;
      const name = stringField(def[1], 'defname');
      const arg = unwrapNode(def[1]['arg']);
      if (name === 'language' && arg?.[0] === 'String') language = stringField(arg[1], 'sval')?.toLowerCase();
      if (name === 'as' && arg?.[0] === 'List') body = stringList(arrayField(arg[1], 'items'))[0];
    }
    if (language !== 'sql' || body === undefined) return;
    let statements: unknown[];
    try {
      statements = parsePostgres(body).statements;
    } catch (error) {
      // Positions inside the body do not point into the submitted text; report none.
      const message = error instanceof Error ? error.message : String(error);
      throw new SqlClassificationError('SQL_PARSE_ERROR', `in LANGUAGE sql function body: ${message}`, undefined, { cause: error });
    }
    for (const statement of statements) {
      const node = unwrapNode(statement);
      if (node !== undefined) this.visitNode(node[0], node[1], { ...top, nested: true, depth: top.depth + 1 });
    }
  }

  private checkWhere(where: unknown): void {
    if (where !== undefined && isConstantTrue(where)) this.flags.add('constant-true-where');
  }

  private visitRelation(value: unknown, access: SqlAccess, ctx: WalkContext, columns: string[] = []): void {
    const wrapped = unwrapNode(value);
    const relation = wrapped?.[0] === 'RangeVar' ? wrapped[1] : isRecord(value) ? value : undefined;
    if (relation !== undefined && typeof relation['relname'] === 'string') this.addRangeVar(relation, access, ctx, columns);
  }

  private addRangeVar(f: JsonRecord, access: SqlAccess, ctx: WalkContext, columns: string[] = []): void {
    const schema = stringField(f, 'schemaname');
    const name = stringField(f, 'relname') ?? '';
    // An unqualified read of a visible CTE name reads the CTE, not a table.
    if (schema === undefined && access === 'read' && ctx.ctes.has(name)) return;
    const qualified = schema === undefined ? [name] : [schema, name];
    const catalog = stringField(f, 'catalogname');
    this.addObject(catalog === undefined ? qualified : [catalog, ...qualified], access, columns);
  }

  private addObject(qualified: string[], access: SqlAccess, columns: string[] = []): void {
    const name = qualified[qualified.length - 1];
    if (name === undefined) return;
    const schema = qualified.length > 1 ? qualified.slice(0, -1).join('.') : undefined;
    const key = `${schema ?? ''}\u0000${name}\u0000${access}`;
    const existing = this.objects.get(key);
    if (existing !== undefined) {
      if (columns.length > 0) existing.columns = [...new Set([...(existing.columns ?? []), ...columns])];
      return;
    }
    const object: SqlObject = schema === undefined ? { name, access } : { schema, name, access };
    if (columns.length > 0) object.columns = [...new Set(columns)];
    this.objects.set(key, object);
  }

  private merge(inner: SqlStatementClassification): void {
    for (const object of inner.objects) {
      const qualified = object.schema === undefined ? [object.name] : [object.schema, object.name];
      this.addObject(qualified, object.access, object.columns ?? []);
    }
    for (const name of inner.functions) this.functions.add(name);
    for (const name of inner.operators ?? []) this.operators.add(name);
    for (const name of inner.attributeNames ?? []) this.attributeNames.add(name);
    for (const name of inner.typeNames ?? []) this.typeNames.add(name);
    for (const flag of inner.flags) this.flags.add(flag);
    this.kinds.push(inner.kind);
  }
}

// -----------------------------------------------------------------------------------------------
// Data tables.

const COMMAND_OF_DML: Readonly<Record<string, string>> = {
  SelectStmt: 'SELECT',
  InsertStmt: 'INSERT',
  UpdateStmt: 'UPDATE',
  DeleteStmt: 'DELETE',
  MergeStmt: 'MERGE',
};

const TRANSACTION_COMMANDS: Readonly<Record<string, string>> = {
  TRANS_STMT_BEGIN: 'BEGIN',
  TRANS_STMT_START: 'START TRANSACTION',
  TRANS_STMT_COMMIT: 'COMMIT',
  TRANS_STMT_ROLLBACK: 'ROLLBACK',
  TRANS_STMT_SAVEPOINT: 'SAVEPOINT',
  TRANS_STMT_RELEASE: 'RELEASE',
  TRANS_STMT_ROLLBACK_TO: 'ROLLBACK TO SAVEPOINT',
  TRANS_STMT_PREPARE: 'PREPARE TRANSACTION',
  TRANS_STMT_COMMIT_PREPARED: 'COMMIT PREPARED',
  TRANS_STMT_ROLLBACK_PREPARED: 'ROLLBACK PREPARED',
};

/** Statements that end the current transaction (COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION). */
const TRANSACTION_ENDING = new Set(['TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK', 'TRANS_STMT_PREPARE', 'TRANS_STMT_COMMIT_PREPARED', 'TRANS_STMT_ROLLBACK_PREPARED']);

/**
 * Settings that change how the server tokenises text, so the server could read a statement
 * differently from this parser (e.g. standard_conforming_strings=off makes `\'` an escaped quote).
 */
const PARSER_DIVERGENCE_SETTINGS = new Set(['standard_conforming_strings', 'backslash_quote', 'client_encoding', 'escape_string_warning']);

const ROW_SECURITY_SUBTYPES = new Set(['AT_DisableRowSecurity', 'AT_NoForceRowSecurity', 'AT_EnableRowSecurity', 'AT_ForceRowSecurity']);

const RELATION_OBJECT_TYPES = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE', 'OBJECT_INDEX']);

/** Statements classified by type alone; every entry is a deliberate choice of kind. */
const SIMPLE_STATEMENTS: Readonly<Record<string, { kind: SqlKind; command: string }>> = {
  CreateSchemaStmt: { kind: 'ddl', command: 'CREATE SCHEMA' },
  CreateSeqStmt: { kind: 'ddl', command: 'CREATE SEQUENCE' },
  AlterSeqStmt: { kind: 'ddl', command: 'ALTER SEQUENCE' },
  AlterFunctionStmt: { kind: 'ddl', command: 'ALTER FUNCTION' },
  CreateDomainStmt: { kind: 'ddl', command: 'CREATE DOMAIN' },
  AlterDomainStmt: { kind: 'ddl', command: 'ALTER DOMAIN' },
  DefineStmt: { kind: 'ddl', command: 'CREATE' },
  CompositeTypeStmt: { kind: 'ddl', command: 'CREATE TYPE' },
  CreateEnumStmt: { kind: 'ddl', command: 'CREATE TYPE' },
  AlterEnumStmt: { kind: 'ddl', command: 'ALTER TYPE' },
  CreateRangeStmt: { kind: 'ddl', command: 'CREATE TYPE' },
  AlterTypeStmt: { kind: 'ddl', command: 'ALTER TYPE' },
  AlterObjectSchemaStmt: { kind: 'ddl', command: 'ALTER SET SCHEMA' },
  AlterObjectDependsStmt: { kind: 'ddl', command: 'ALTER DEPENDS ON EXTENSION' },
  AlterExtensionStmt: { kind: 'ddl', command: 'ALTER EXTENSION' },
  AlterExtensionContentsStmt: { kind: 'ddl', command: 'ALTER EXTENSION' },
  CreateFdwStmt: { kind: 'ddl', command: 'CREATE FOREIGN DATA WRAPPER' },
  AlterFdwStmt: { kind: 'ddl', command: 'ALTER FOREIGN DATA WRAPPER' },
  CreateForeignServerStmt: { kind: 'ddl', command: 'CREATE SERVER' },
  AlterForeignServerStmt: { kind: 'ddl', command: 'ALTER SERVER' },
  ImportForeignSchemaStmt: { kind: 'ddl', command: 'IMPORT FOREIGN SCHEMA' },
  CreatePLangStmt: { kind: 'ddl', command: 'CREATE LANGUAGE' },
  CreateCastStmt: { kind: 'ddl', command: 'CREATE CAST' },
  CreateConversionStmt: { kind: 'ddl', command: 'CREATE CONVERSION' },
  CreateOpClassStmt: { kind: 'ddl', command: 'CREATE OPERATOR CLASS' },
  CreateOpFamilyStmt: { kind: 'ddl', command: 'CREATE OPERATOR FAMILY' },
  AlterOpFamilyStmt: { kind: 'ddl', command: 'ALTER OPERATOR FAMILY' },
  AlterOperatorStmt: { kind: 'ddl', command: 'ALTER OPERATOR' },
  CreateStatsStmt: { kind: 'ddl', command: 'CREATE STATISTICS' },
  AlterStatsStmt: { kind: 'ddl', command: 'ALTER STATISTICS' },
  CreateTransformStmt: { kind: 'ddl', command: 'CREATE TRANSFORM' },
  CreateAmStmt: { kind: 'ddl', command: 'CREATE ACCESS METHOD' },
  AlterEventTrigStmt: { kind: 'ddl', command: 'ALTER EVENT TRIGGER' },
  CreatePublicationStmt: { kind: 'ddl', command: 'CREATE PUBLICATION' },
  AlterPublicationStmt: { kind: 'ddl', command: 'ALTER PUBLICATION' },
  CreateSubscriptionStmt: { kind: 'ddl', command: 'CREATE SUBSCRIPTION' },
  AlterSubscriptionStmt: { kind: 'ddl', command: 'ALTER SUBSCRIPTION' },
  DropSubscriptionStmt: { kind: 'ddl', command: 'DROP SUBSCRIPTION' },
  AlterTSConfigurationStmt: { kind: 'ddl', command: 'ALTER TEXT SEARCH CONFIGURATION' },
  AlterTSDictionaryStmt: { kind: 'ddl', command: 'ALTER TEXT SEARCH DICTIONARY' },
  AlterCollationStmt: { kind: 'ddl', command: 'ALTER COLLATION' },
  AlterTableMoveAllStmt: { kind: 'ddl', command: 'ALTER TABLE ALL IN TABLESPACE' },
  ReplicaIdentityStmt: { kind: 'ddl', command: 'ALTER TABLE REPLICA IDENTITY' },
  CreateTableSpaceStmt: { kind: 'ddl', command: 'CREATE TABLESPACE' },
  DropTableSpaceStmt: { kind: 'ddl', command: 'DROP TABLESPACE' },
  AlterTableSpaceOptionsStmt: { kind: 'ddl', command: 'ALTER TABLESPACE' },
  CreatedbStmt: { kind: 'ddl', command: 'CREATE DATABASE' },
  DropdbStmt: { kind: 'ddl', command: 'DROP DATABASE' },
  AlterDatabaseStmt: { kind: 'ddl', command: 'ALTER DATABASE' },
  AlterDatabaseRefreshCollStmt: { kind: 'ddl', command: 'ALTER DATABASE REFRESH COLLATION VERSION' },
  AlterDefaultPrivilegesStmt: { kind: 'dcl', command: 'ALTER DEFAULT PRIVILEGES' },
  DropRoleStmt: { kind: 'dcl', command: 'DROP ROLE' },
  DropUserMappingStmt: { kind: 'dcl', command: 'DROP USER MAPPING' },
  ReassignOwnedStmt: { kind: 'dcl', command: 'REASSIGN OWNED' },
  DropOwnedStmt: { kind: 'dcl', command: 'DROP OWNED' },
  AlterOwnerStmt: { kind: 'dcl', command: 'ALTER OWNER' },
};

function objectCommand(verb: string, objtype: string | undefined): string {
  if (objtype === undefined) return verb;
  return `${verb} ${objtype.replace(/^OBJECT_/, '').replace(/_/g, ' ')}`;
}

/** `DefElem` without an argument means true (`EXPLAIN (ANALYZE)`); otherwise read the value. */
function defElemIsTrue(def: JsonRecord): boolean {
  const arg = def['arg'];
  if (arg === undefined) return true;
  return isTruthyConst(arg);
}

function isTruthyConst(value: unknown): boolean {
  const node = unwrapNode(value);
  if (node === undefined) return true;
  const [type, f] = node;
  if (type === 'Boolean') return f['boolval'] === true;
  if (type === 'Integer') return typeof f['ival'] === 'number' && f['ival'] !== 0;
  if (type === 'String') return !['false', 'off', 'no', '0', 'f', 'n'].includes((stringField(f, 'sval') ?? '').toLowerCase());
  if (type === 'A_Const') {
    const ival = recordField(f, 'ival');
    if (ival !== undefined) return typeof ival['ival'] === 'number' && ival['ival'] !== 0;
    const boolval = recordField(f, 'boolval');
    if (boolval !== undefined) return boolval['boolval'] === true;
    const sval = recordField(f, 'sval');
    if (sval !== undefined) return !['false', 'off', 'no', '0', 'f', 'n'].includes((stringField(sval, 'sval') ?? '').toLowerCase());
  }
  // Anything unexpected counts as true: the cautious reading for `analyze`/`read write`.
  return true;
}

function hasReadWriteOption(options: readonly unknown[]): boolean {
  return options.some((option) => {
    const def = unwrapNode(option);
    return def?.[0] === 'DefElem' && stringField(def[1], 'defname') === 'transaction_read_only' && !isTruthyConst(def[1]['arg']);
  });
}

function argsAreTrue(args: readonly unknown[]): boolean {
  return args.length > 0 && args.every((arg) => isTruthyConst(arg));
}

function hasPasswordOption(options: readonly unknown[]): boolean {
  return options.some((option) => {
    const def = unwrapNode(option);
    return def?.[0] === 'DefElem' && /password/i.test(stringField(def[1], 'defname') ?? '');
  });
}

function targetNames(targets: readonly unknown[]): string[] {
  const names: string[] = [];
  for (const target of targets) {
    const node = unwrapNode(target);
    const name = node?.[0] === 'ResTarget' ? stringField(node[1], 'name') : undefined;
    if (name !== undefined) names.push(name);
  }
  return names;
}
