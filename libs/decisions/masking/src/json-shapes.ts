// Path shapes of a JSON document being masked: keys, and `[*]` for any array index. Each shape
// holds its reported path (`response.body$.customers[*].ssn`) and, when the policy's rules do not
// name indices, its rule, looked up once. Every element of an array shares its children's shapes,
// so a document with 100,000 records asks the policy once per distinct key path, and builds no
// path string per value. Bounded per document (count and characters); beyond the budget a shape
// is made for the value at hand and not kept.
import { formatJsonPath, type JsonPathSegment } from './json-path.js';
import type { JsonTextMaskTarget } from './json-text-masker.js';
import type { FieldRule } from './policy.js';

const MAX_SHAPES = 4096;
const MAX_SHAPE_CHARS = 1024 * 1024;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

export interface JsonShape {
  readonly field: string;
  /** The rule here, looked up once; `undefined` when none (or when rules name indices: see JsonShapes.ruleAt). */
  readonly rule: FieldRule | undefined;
  children: Map<string, JsonShape> | undefined;
  element: JsonShape | undefined;
}

export class JsonShapes {
  /** When rules name array indices, a value's rule is looked up at its concrete path, not per shape. */
  readonly #perValueRules: boolean;
  readonly root: JsonShape;
  #kept = 0;
  #chars = 0;

  constructor(
    private readonly target: JsonTextMaskTarget,
    location: string,
  ) {
    this.#perValueRules = target.indexSensitive !== false;
    this.root = { field: location + formatJsonPath([]), rule: this.#perValueRules ? undefined : target.ruleFor([]), children: undefined, element: undefined };
  }

  /** Shapes kept so far (bounded). */
  get kept(): number {
    return this.#kept;
  }

  /** The shape of member `key` of an object at `parent`; `path` is the member's concrete path. */
  child(parent: JsonShape, key: string, path: readonly JsonPathSegment[]): JsonShape {
    const known = parent.children?.get(key);
    if (known) return known;
    const shape = this.#make(parent.field + (IDENTIFIER.test(key) ? `.${key}` : formatJsonPath([key]).slice(1)), path, key.length);
    if (shape.kept) (parent.children ??= new Map()).set(key, shape.shape);
    return shape.shape;
  }

  /** The shape every element of an array at `parent` shares; `path` is an element's concrete path. */
  element(parent: JsonShape, path: readonly JsonPathSegment[]): JsonShape {
    if (parent.element) return parent.element;
    const shape = this.#make(`${parent.field}[*]`, path, 0);
    if (shape.kept) parent.element = shape.shape;
    return shape.shape;
  }

  /** The rule at a value of this shape (`path`: its concrete path, used when rules name indices). */
  ruleAt(shape: JsonShape, path: readonly JsonPathSegment[]): FieldRule | undefined {
    return this.#perValueRules ? this.target.ruleFor(path) : shape.rule;
  }

  #make(field: string, path: readonly JsonPathSegment[], keyChars: number): { shape: JsonShape; kept: boolean } {
    const shape: JsonShape = { field, rule: this.#perValueRules ? undefined : this.target.ruleFor(path), children: undefined, element: undefined };
    const chars = field.length + keyChars;
    if (this.#kept >= MAX_SHAPES || this.#chars + chars > MAX_SHAPE_CHARS) return { shape, kept: false };
    this.#kept++;
    this.#chars += chars;
    return { shape, kept: true };
  }
}
