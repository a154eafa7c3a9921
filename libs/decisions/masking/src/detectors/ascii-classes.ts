// Character tests on UTF-16 code units, for the JS versions of the detectors' look-behinds.
// `charCodeAt` past either end gives NaN, which is in no class (like a regex at the text edge).

export const isDigit = (code: number): boolean => code >= 48 && code <= 57;

export const isAsciiAlnum = (code: number): boolean => (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);

/** `\w` without the `u` flag: `[A-Za-z0-9_]`. */
export const isWordChar = (code: number): boolean => code === 95 || isAsciiAlnum(code);

export const SPACE = 32;
export const DASH = 45;
export const DOT = 46;
export const PLUS = 43;
export const SLASH = 47;
export const COLON = 58;
export const OPEN_PAREN = 40;
