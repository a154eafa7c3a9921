import { arrayField, recordField, sameExpression, stringField, stringList, unwrapNode, type JsonRecord } from './json-node.js';

// A small constant folder for WHERE clauses. It answers "is this condition true for every row?"
// for the shapes used to defeat `WHERE`-required rules: `1=1`, `true`, `'a'='a'`, `NOT false`,
// `x OR true`, `2>1`, `1+1=2`, `id = id`, `p OR NOT p`, `x IS NULL OR x IS NOT NULL`, `LIKE '%'`,
// `EXISTS (SELECT 1)`. Unknown shapes fold to `unknown`, never to true or false.

type Folded = boolean | number | string | null | typeof UNKNOWN;
const UNKNOWN = Symbol('unknown');

const TRUE_WORDS = new Set(['t', 'true', 'y', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['f', 'false', 'n', 'no', 'off', '0']);

export function isConstantTrue(expression: unknown): boolean {
  return fold(expression, 0) === true;
}

function fold(expression: unknown, depth: number): Folded {
  if (depth > 200) return UNKNOWN;
  const node = unwrapNode(expression);
  if (node === undefined) return UNKNOWN;
  const [type, f] = node;
  switch (type) {
    case 'A_Const':
      return foldConst(f);
    case 'TypeCast':
      return foldCast(fold(f['arg'], depth + 1), stringList(arrayField(recordField(f, 'typeName'), 'names')));
    case 'BoolExpr':
      return foldBool(stringField(f, 'boolop'), arrayField(f, 'args'), depth);
    case 'A_Expr':
      return foldExpr(f, depth);
    case 'NullTest': {
      const value = fold(f['arg'], depth + 1);
      if (value === UNKNOWN) return UNKNOWN;
      return stringField(f, 'nulltesttype') === 'IS_NOT_NULL' ? value !== null : value === null;
    }
    case 'BooleanTest': {
      const value = fold(f['arg'], depth + 1);
      if (value === UNKNOWN) return UNKNOWN;
      switch (stringField(f, 'booltesttype')) {
        case 'IS_TRUE': return value === true;
        case 'IS_NOT_TRUE': return value !== true;
        case 'IS_FALSE': return value === false;
        case 'IS_NOT_FALSE': return value !== false;
        case 'IS_UNKNOWN': return value === null;
        case 'IS_NOT_UNKNOWN': return value !== null;
        default: return UNKNOWN;
      }
    }
    case 'SubLink': {
      // EXISTS over a FROM-less, WHERE-less select always yields a row.
      const sub = unwrapNode(f['subselect']);
      if (stringField(f, 'subLinkType') === 'EXISTS_SUBLINK' && sub?.[0] === 'SelectStmt') {
        const select = sub[1];
        if (arrayField(select, 'fromClause').length === 0 && select['whereClause'] === undefined && select['havingClause'] === undefined && select['limitCount'] === undefined && arrayField(select, 'valuesLists').length === 0) return true;
      }
      return UNKNOWN;
    }
    default:
      return UNKNOWN;
  }
}

function foldConst(f: JsonRecord): Folded {
  if (f['isnull'] === true) return null;
  // Zero and false are encoded as empty objects (`{"ival":{}}`, `{"boolval":{}}`).
  const ival = recordField(f, 'ival');
  if (ival !== undefined) return typeof ival['ival'] === 'number' ? ival['ival'] : 0;
  const fval = recordField(f, 'fval');
  if (fval !== undefined) return Number(stringField(fval, 'fval') ?? 'NaN');
  const boolval = recordField(f, 'boolval');
  if (boolval !== undefined) return boolval['boolval'] === true;
  const sval = recordField(f, 'sval');
  if (sval !== undefined) return stringField(sval, 'sval') ?? '';
  return UNKNOWN;
}

function foldCast(value: Folded, typeNames: string[]): Folded {
  if (value === UNKNOWN || value === null) return value;
  const type = typeNames[typeNames.length - 1];
  if (type === 'bool' || type === 'boolean') {
    const word = String(value).trim().toLowerCase();
    if (typeof value === 'boolean') return value;
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return UNKNOWN;
  }
  if (type === 'int2' || type === 'int4' || type === 'int8' || type === 'numeric' || type === 'float4' || type === 'float8' || type === 'integer') {
    const number = Number(value);
    return Number.isNaN(number) ? UNKNOWN : number;
  }
  if (type === 'text' || type === 'varchar' || type === 'bpchar' || type === 'name') return String(value);
  return UNKNOWN;
}

function foldBool(op: string | undefined, args: readonly unknown[], depth: number): Folded {
  if (op === 'NOT_EXPR') {
    const value = fold(args[0], depth + 1);
    return typeof value === 'boolean' ? !value : value === null ? null : UNKNOWN;
  }
  const values = args.map((arg) => fold(arg, depth + 1));
  if (op === 'OR_EXPR') {
    if (values.includes(true)) return true;
    if (hasComplementaryPair(args)) return true;
    if (values.every((v) => v === false)) return false;
    return UNKNOWN;
  }
  if (op === 'AND_EXPR') {
    if (values.includes(false)) return false;
    if (values.every((v) => v === true)) return true;
    return UNKNOWN;
  }
  return UNKNOWN;
}

/** `p OR NOT p` and `x IS NULL OR x IS NOT NULL` hold for every row. */
function hasComplementaryPair(args: readonly unknown[]): boolean {
  for (const arg of args) {
    const node = unwrapNode(arg);
    if (node?.[0] === 'BoolExpr' && stringField(node[1], 'boolop') === 'NOT_EXPR') {
      const negated = arrayField(node[1], 'args')[0];
      if (args.some((other) => other !== arg && sameExpression(other, negated))) return true;
    }
    if (node?.[0] === 'NullTest') {
      const target = node[1]['arg'];
      const kind = stringField(node[1], 'nulltesttype');
      const hasOpposite = args.some((other) => {
        const o = unwrapNode(other);
        return o?.[0] === 'NullTest' && stringField(o[1], 'nulltesttype') !== kind && sameExpression(o[1]['arg'], target);
      });
      if (hasOpposite) return true;
    }
  }
  return false;
}

function foldExpr(f: JsonRecord, depth: number): Folded {
  const kind = stringField(f, 'kind');
  const op = stringList(arrayField(f, 'name')).join('.');
  const left = f['lexpr'];
  const right = f['rexpr'];
  if (kind === 'AEXPR_OP') {
    // `id = id` is true for every row where id is not null: treat it as a tautology.
    if ((op === '=' || op === '>=' || op === '<=') && left !== undefined && sameExpression(left, right)) return true;
    if ((op === '<>' || op === '!=') && left !== undefined && sameExpression(left, right)) return false;
    const l = left === undefined ? UNKNOWN : fold(left, depth + 1);
    const r = fold(right, depth + 1);
    if (left === undefined && op === '-' && typeof r === 'number') return -r;
    if (l === UNKNOWN || r === UNKNOWN) return UNKNOWN;
    if (l === null || r === null) return null;
    return applyOperator(op, l, r);
  }
  if (kind === 'AEXPR_IN') {
    const l = fold(left, depth + 1);
    if (l === UNKNOWN || l === null) return UNKNOWN;
    const list = listItems(right);
    const values = list.map((item) => fold(item, depth + 1));
    const member = values.some((v) => v !== UNKNOWN && v !== null && compare(l, v) === 0);
    return op === '<>' ? (member ? false : values.includes(UNKNOWN) ? UNKNOWN : true) : member ? true : UNKNOWN;
  }
  if (kind === 'AEXPR_LIKE' || kind === 'AEXPR_ILIKE') {
    const pattern = fold(right, depth + 1);
    // `col LIKE '%'` matches every non-null value.
    if (op !== '!~~' && op !== '!~~*' && typeof pattern === 'string' && pattern.length > 0 && /^%+$/.test(pattern)) return true;
    return UNKNOWN;
  }
  if (kind === 'AEXPR_BETWEEN' || kind === 'AEXPR_NOT_BETWEEN') {
    const l = fold(left, depth + 1);
    const bounds = listItems(right).map((item) => fold(item, depth + 1));
    const [low, high] = bounds;
    if (l === UNKNOWN || l === null || low === undefined || high === undefined || low === UNKNOWN || high === UNKNOWN || low === null || high === null) return UNKNOWN;
    const inside = compare(l, low) >= 0 && compare(l, high) <= 0;
    return kind === 'AEXPR_BETWEEN' ? inside : !inside;
  }
  return UNKNOWN;
}

/** `IN (…)` and `BETWEEN … AND …` keep their operands in a `List` node. */
function listItems(value: unknown): readonly unknown[] {
  if (Array.isArray(value)) return value;
  const node = unwrapNode(value);
  return node?.[0] === 'List' ? arrayField(node[1], 'items') : [];
}

function applyOperator(op: string, l: Exclude<Folded, null | typeof UNKNOWN>, r: Exclude<Folded, null | typeof UNKNOWN>): Folded {
  switch (op) {
    case '=': return compare(l, r) === 0;
    case '<>':
    case '!=': return compare(l, r) !== 0;
    case '<': return compare(l, r) < 0;
    case '<=': return compare(l, r) <= 0;
    case '>': return compare(l, r) > 0;
    case '>=': return compare(l, r) >= 0;
    case '+': return typeof l === 'number' && typeof r === 'number' ? l + r : UNKNOWN;
    case '-': return typeof l === 'number' && typeof r === 'number' ? l - r : UNKNOWN;
    case '*': return typeof l === 'number' && typeof r === 'number' ? l * r : UNKNOWN;
    case '||': return typeof l === 'string' && typeof r === 'string' ? l + r : UNKNOWN;
    default: return UNKNOWN;
  }
}

function compare(l: Exclude<Folded, null | typeof UNKNOWN>, r: Exclude<Folded, null | typeof UNKNOWN>): number {
  // PostgreSQL coerces an untyped literal to the other side's type ('1' = 1 is true).
  if (typeof l === 'number' || typeof r === 'number') {
    const a = Number(l);
    const b = Number(r);
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.NaN;
    return a === b ? 0 : a < b ? -1 : 1;
  }
  const a = String(l);
  const b = String(r);
  return a === b ? 0 : a < b ? -1 : 1;
}
