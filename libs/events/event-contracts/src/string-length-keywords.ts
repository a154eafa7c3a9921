// JSON Schema's maxLength/minLength count code points. ajv counts them with a loop over every
// UTF-16 unit of the string, even when the answer is plain from the length: a frame event's
// base64 `data` (up to 1.4 M characters) was walked character by character at every validation.
// These keywords decide the same thing (the same strings pass and fail) and count only when the
// length alone cannot tell: a string of n UTF-16 units has between ceil(n / 2) and n code points.
import { _, str, type CodeKeywordDefinition, type KeywordErrorDefinition } from 'ajv/dist/2020.js';

/** Code points in `text` (a lone surrogate counts as one, as ajv's ucs2length). */
export function codePointLength(text: string): number {
  const units = text.length;
  let count = 0;
  for (let i = 0; i < units; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < units && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
    count++;
  }
  return count;
}

/** At most `limit` code points, counting only when the string has more than `limit` UTF-16 units. */
export function hasAtMostCodePoints(text: string, limit: number): boolean {
  return text.length <= limit || (text.length <= 2 * limit && codePointLength(text) <= limit);
}

/** At least `limit` code points, counting only when the units alone cannot tell. */
export function hasAtLeastCodePoints(text: string, limit: number): boolean {
  if (text.length < limit) return false;
  return text.length >= 2 * limit || codePointLength(text) >= limit;
}

// The same messages and params as ajv's own keywords (tests and clients read them).
const error: KeywordErrorDefinition = {
  message: ({ keyword, schemaCode }) => str`must NOT have ${keyword === 'maxLength' ? 'more' : 'fewer'} than ${schemaCode} characters`,
  params: ({ schemaCode }) => _`{limit: ${schemaCode}}`,
};

/** Replacements for ajv's maxLength/minLength (remove those first): same semantics, no loop when the length decides. */
export const stringLengthKeywords: readonly CodeKeywordDefinition[] = (['maxLength', 'minLength'] as const).map((keyword) => ({
  keyword,
  type: 'string',
  schemaType: 'number',
  error,
  code(cxt) {
    const check = cxt.gen.scopeValue('func', { ref: keyword === 'maxLength' ? hasAtMostCodePoints : hasAtLeastCodePoints });
    cxt.fail(_`!${check}(${cxt.data}, ${cxt.schemaCode})`);
  },
}));
