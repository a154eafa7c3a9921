// Which column values can reach a client other than as a plain column (issue 19 §1). PostgreSQL
// tells the gateway the table and column of a result column only when the column is selected
// plainly; a value passed through an expression (a function, an operator, a cast, an aggregate, a
// set operation, a subquery, a whole-row reference) arrives as a new, anonymous column that no
// column rule can recognise. The gateway refuses a statement that derives from a column its
// policy masks; this lists the candidates by name.
import { arrayField, isRecord, recordField, stringField, unwrapNode, type JsonRecord } from './json-node.js';

const FILTER_KEYS = ['whereClause', 'quals', 'havingClause'] as const;

/** Comparison operators whose operands' values never reach the client (a filter only). */
const FILTER_OPERATORS = new Set(['=', '<>', '!=', '<', '>', '<=', '>=']);

/**
 * Column names (the last identifier of each reference) used anywhere except in a position where
 * the value reaches the client plainly or not at all: a plain column of the top-level SELECT's
 * output, an operand of a comparison or IN in WHERE/JOIN, an IS NULL test, an ORDER BY or GROUP BY
 * item. `*` stands for a star or a whole-row reference (a relation's name or alias used as a
 * value) anywhere but a plain top-level `*`. EXPLAIN's statement returns no values: none.
 */
export function derivedColumnReferences(statement: unknown): string[] {
  const node = unwrapNode(statement);
  if (node === undefined) return [];
  const [type, fields] = node;
  if (type === 'ExplainStmt') return [];
  const top = type === 'SelectStmt' ? fields : type === 'DeclareCursorStmt' || type === 'PrepareStmt' ? selectOf(fields['query']) : undefined;
  const walk = new LineageWalk();
  if (top !== undefined && (stringField(top, 'op') ?? 'SETOP_NONE') === 'SETOP_NONE') {
    for (const target of arrayField(top, 'targetList')) {
      const value = recordField(recordField(unwrapNode(target)?.[1], 'val') ?? {}, 'ColumnRef');
      if (value !== undefined) walk.plain.add(value);
    }
  }
  walk.walk(statement, 0);
  walk.settle();
  return [...walk.derived].sort();
}

function selectOf(value: unknown): JsonRecord | undefined {
  const node = unwrapNode(value);
  return node?.[0] === 'SelectStmt' ? node[1] : undefined;
}

/** Nesting beyond which the walk stops (the classifier bounds depth already; this only guards the stack). */
const MAX_DEPTH = 2000;

/**
 * One walk over the tree: it collects the statement's relation names and its column references,
 * and marks those in plain positions; whether a one-name reference is a whole row depends on
 * every relation name, so references are judged once the walk is over (settle).
 */
class LineageWalk {
  readonly derived = new Set<string>();
  /** ColumnRef records in positions where their value reaches the client plainly or not at all (unless a whole row). */
  readonly plain = new Set<JsonRecord>();
  private readonly relations = new Set<string>();
  private readonly references: JsonRecord[] = [];

  /** A one-name reference to a relation of the statement: the whole row as a composite value. */
  isWholeRow(ref: JsonRecord): boolean {
    const names = arrayField(ref, 'fields');
    if (names.some((name) => unwrapNode(name)?.[0] === 'A_Star')) return false;
    if (names.length !== 1) return false;
    const name = stringField(unwrapNode(names[0])?.[1], 'sval');
    return name !== undefined && this.relations.has(name);
  }

  walk(value: unknown, depth: number): void {
    if (depth > MAX_DEPTH) {
      this.derived.add('*');
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) this.walk(item, depth + 1);
      return;
    }
    if (!isRecord(value)) return;
    this.markFilters(value);
    // for…in, not Object.entries: no array per record (parse trees come from JSON.parse: own keys only).
    for (const key in value) {
      const child = value[key];
      if (key === 'ColumnRef' && isRecord(child)) {
        this.references.push(child);
        continue;
      }
      if ((key === 'RangeVar' || key === 'RangeSubselect' || key === 'RangeFunction') && isRecord(child)) {
        const relname = stringField(child, 'relname');
        if (relname !== undefined) this.relations.add(relname);
        const alias = stringField(recordField(child, 'alias'), 'aliasname');
        if (alias !== undefined) this.relations.add(alias);
      }
      this.walk(child, depth + 1);
    }
  }

  /** After the walk: every reference not in a plain position, or that names a whole row, is a derivation. */
  settle(): void {
    for (const ref of this.references) {
      if (!this.plain.has(ref) || this.isWholeRow(ref)) this.record(ref);
    }
  }

  private record(ref: JsonRecord): void {
    const names = arrayField(ref, 'fields');
    const last = unwrapNode(names.at(-1));
    if (last === undefined || last[0] === 'A_Star' || this.isWholeRow(ref)) {
      this.derived.add('*');
      return;
    }
    const name = stringField(last[1], 'sval');
    this.derived.add(name ?? '*');
  }

  /** Marks the plain column operands of filters, sorts and groupings under this record as safe. */
  private markFilters(record: JsonRecord): void {
    if (record['whereClause'] === undefined && record['quals'] === undefined && record['havingClause'] === undefined && record['sortClause'] === undefined && record['groupClause'] === undefined) return;
    for (const key of FILTER_KEYS) this.markFilter(record[key]);
    for (const item of arrayField(record, 'sortClause')) this.markPlain(recordField(unwrapNode(item)?.[1], 'node'));
    for (const item of arrayField(record, 'groupClause')) this.markPlain(item);
  }

  private markFilter(value: unknown): void {
    const node = unwrapNode(value);
    if (node === undefined) return;
    const [type, f] = node;
    if (type === 'BoolExpr') {
      for (const arg of arrayField(f, 'args')) this.markFilter(arg);
    } else if (type === 'A_Expr') {
      const kind = stringField(f, 'kind');
      const operator = stringField(unwrapNode(arrayField(f, 'name')[0])?.[1], 'sval');
      if ((kind === 'AEXPR_OP' && operator !== undefined && FILTER_OPERATORS.has(operator)) || kind === 'AEXPR_IN') {
        this.markPlain(f['lexpr']);
        this.markPlain(f['rexpr']);
      }
    } else if (type === 'NullTest') {
      this.markPlain(f['arg']);
    }
  }

  private markPlain(value: unknown): void {
    const node = unwrapNode(value);
    if (node?.[0] === 'ColumnRef') this.plain.add(node[1]);
  }
}
