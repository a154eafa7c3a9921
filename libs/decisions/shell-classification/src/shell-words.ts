import type { Node } from 'web-tree-sitter';

/** A shell word after quote removal, or its source text when expansion makes it unknowable. */
export interface ShellWord {
  value: string;
  /** Contains a parameter, command, arithmetic, glob or brace expansion. */
  dynamic: boolean;
}


/** Evaluates a word node the way the shell would before running it, as far as that is static. */
export function evaluateWord(node: Node): ShellWord {
  switch (node.type) {
    case 'word':
      return { value: unescapeUnquoted(node.text), dynamic: hasUnquotedPattern(node.text) };
    case 'number':
      return { value: node.text, dynamic: false };
    case 'raw_string':
      return { value: node.text.slice(1, -1), dynamic: false };
    case 'ansi_c_string':
      return { value: decodeAnsiC(node.text.slice(2, -1)), dynamic: false };
    case 'string':
    case 'translated_string':
      return evaluateDoubleQuoted(node);
    case 'concatenation': {
      let value = '';
      // Brace expansion can span parts (`r{m,}` is `r` `{` `m,` `}`): check the unquoted skeleton.
      let dynamic = hasUnquotedPattern(node.children.map((part) => (part.type === 'word' ? part.text : '_')).join(''));
      for (const part of node.children) {
        const word = evaluateWord(part);
        value += word.value;
        dynamic ||= word.dynamic;
      }
      return { value, dynamic };
    }
    default:
      return { value: node.text, dynamic: true };
  }
}

function evaluateDoubleQuoted(node: Node): ShellWord {
  let value = '';
  let dynamic = false;
  for (const part of node.children) {
    if (part.type === 'string_content') value += unescapeDoubleQuoted(part.text);
    else if (part.type === 'string' || part.type === 'translated_string') {
      const inner = evaluateDoubleQuoted(part);
      value += inner.value;
      dynamic ||= inner.dynamic;
    } else if (!part.isNamed) continue; // the quote marks and `$` of $"…"
    else {
      value += part.text;
      dynamic = true; // an expansion inside the quotes
    }
  }
  return { value, dynamic };
}

/** Outside quotes a backslash quotes the next character; backslash-newline is removed. */
function unescapeUnquoted(text: string): string {
  return text.replace(/\\(\n|.)/gs, (_match, char: string) => (char === '\n' ? '' : char));
}

/** Inside double quotes a backslash only escapes `$`, `` ` ``, `"`, `\` and newline. */
function unescapeDoubleQuoted(text: string): string {
  return text.replace(/\\([$`"\\\n])/g, (_match, char: string) => (char === '\n' ? '' : char));
}

/** Unquoted glob characters or brace expansion make the word's value depend on the file system. */
function hasUnquotedPattern(text: string): boolean {
  let escaped = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i];
    if (escaped) {
      escaped = false;
      continue;
    }
    if (char === '\\') escaped = true;
    else if (char === '*' || char === '?' || char === '[') return true;
    else if (char === '{' && /^\{[^}]*(,|\.\.)[^}]*\}/.test(text.slice(i))) return true;
  }
  return false;
}

const ANSI_C_ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', a: '\u0007', b: '\b', e: '\u001b', E: '\u001b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };

/** `$'…'` strings: `$'\x72\x6d'` is `rm`. */
function decodeAnsiC(body: string): string {
  return body.replace(/\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)/gs, (_match, escape: string) => {
    const kind = escape[0] ?? '';
    if (kind === 'x' || kind === 'u' || kind === 'U') return String.fromCodePoint(Number.parseInt(escape.slice(1), 16));
    if (/[0-7]/.test(kind)) return String.fromCharCode(Number.parseInt(escape, 8));
    if (kind === 'c') return String.fromCharCode((escape.charCodeAt(1) ?? 64) & 31);
    return ANSI_C_ESCAPES[escape] ?? `\\${escape}`;
  });
}
