import type { ShellClassificationError } from './errors.js';

export type ShellFlag =
  /** Output redirected to a file other than /dev/null (`>`, `>>`, `&>`, `>|`, `<>`). */
  | 'redirect-to-file'
  /** A program name that is an expansion (`$CMD`, `$(…)`, globs, brace expansion): unknowable statically. */
  | 'dynamic-command'
  /** Code assembled at run time: `eval`/`sh -c` strings with expansions in them. */
  | 'dynamic-code'
  | 'background'
  | 'eval'
  | 'heredoc'
  | 'here-string'
  | 'command-substitution'
  | 'process-substitution'
  | 'subshell'
  | 'function-definition'
  /** A shell reading its program from standard input (`curl … | sh`). */
  | 'shell-from-stdin'
  /** Inline interpreter code (`python -c`, `perl -e`, `node -e`…), not classified further. */
  | 'inline-script'
  /** `source file` / `. file`: runs a file's contents in this shell. */
  | 'source'
  | 'sudo'
  | 'coprocess';

export interface ShellProgram {
  /** Basename of the program as the shell resolves the word (`/usr/bin/rm` → `rm`, `r''m` → `rm`). */
  name: string;
  /** The program word after quote removal, as written (may contain a path). */
  path: string;
  /** Arguments after quote removal; arguments with expansions keep their source text. */
  args: string[];
  /** Wrappers it runs under, outermost first: `sudo`, `env`, `xargs`, `sh -c`, `find -exec`, `eval`… */
  via: string[];
  /** The program word is an expansion: `name`/`path` hold its source text. */
  dynamic: boolean;
  /** Some argument contains an expansion whose value is unknown statically. */
  dynamicArgs: boolean;
}

export interface ShellClassificationOk {
  ok: true;
  programs: ShellProgram[];
  flags: ShellFlag[];
}

export interface ShellClassificationFailure {
  ok: false;
  error: ShellClassificationError;
}

export type ShellClassification = ShellClassificationOk | ShellClassificationFailure;

export interface ShellClassifyOptions {
  /** Longest accepted input in UTF-8 bytes (default 64 KiB). */
  maxBytes?: number;
  /** Deepest syntax nesting followed (default 64). */
  maxDepth?: number;
  /** How many levels of `sh -c '…'` / `eval '…'` strings are parsed recursively (default 4). */
  maxStringDepth?: number;
}
