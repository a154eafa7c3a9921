// Bash removes backslash-newline before it splits words, so `r\<newline>m` is `rm`;
// tree-sitter-bash treats it as a word break instead. Joining continuations first makes the
// parser see what bash runs. Inside single quotes, $'…' and comments they are kept, as bash does.

export function joinLineContinuations(text: string): string {
  if (!text.includes('\\\n')) return text;
  let output = '';
  let state: 'plain' | 'single' | 'double' | 'ansi' | 'comment' = 'plain';
  for (let i = 0; i < text.length; i += 1) {
    const char = text[i] as string;
    const next = text[i + 1];
    switch (state) {
      case 'single':
        if (char === "'") state = 'plain';
        output += char;
        break;
      case 'ansi':
        if (char === '\\' && next !== undefined) {
          output += char + next;
          i += 1;
        } else {
          if (char === "'") state = 'plain';
          output += char;
        }
        break;
      case 'comment':
        if (char === '\n') state = 'plain';
        output += char;
        break;
      case 'double':
      case 'plain':
        if (char === '\\' && next === '\n') {
          i += 1;
          break;
        }
        if (char === '\\' && next !== undefined) {
          output += char + next;
          i += 1;
          break;
        }
        if (state === 'double') {
          if (char === '"') state = 'plain';
        } else if (char === '"') state = 'double';
        else if (char === "'") state = output.endsWith('$') ? 'ansi' : 'single';
        else if (char === '#' && (output === '' || /[\s;&|()]$/.test(output))) state = 'comment';
        output += char;
        break;
    }
  }
  return output;
}
