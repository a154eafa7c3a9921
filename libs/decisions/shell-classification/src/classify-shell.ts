import { createRequire } from 'node:module';
import { Language, Parser, type Node } from 'web-tree-sitter';
import { ShellClassificationError } from './errors.js';
import type { ShellClassification, ShellClassifyOptions, ShellFlag, ShellProgram } from './shell-classification.js';
import { joinLineContinuations } from './line-continuations.js';
import { evaluateWord, type ShellWord } from './shell-words.js';
import { INTERPRETERS, SHELLS, WRAPPERS, type WrapperSpec } from './wrappers.js';

// Shell commands are parsed with tree-sitter-bash (WebAssembly) and walked for every program
// that would run: pipelines, lists, subshells, substitutions, functions, and the command lines
// hidden in `sh -c '…'`, `eval '…'`, `sudo …`, `env …`, `xargs …`, `find -exec …`.

const DEFAULT_MAX_BYTES = 64 * 1024;
const DEFAULT_MAX_DEPTH = 64;
const DEFAULT_MAX_STRING_DEPTH = 4;
const LONE_SURROGATE = /\p{Cs}/u;

let parserLoading: Promise<Parser> | undefined;
let parser: Parser | undefined;

/** Loads the bash grammar once; afterwards classifyShellSync may be used. */
export async function loadShellClassifier(): Promise<void> {
  parserLoading ??= (async () => {
    await Parser.init();
    const require = createRequire(import.meta.url);
    const language = await Language.load(require.resolve('tree-sitter-bash/tree-sitter-bash.wasm'));
    const instance = new Parser();
    instance.setLanguage(language);
    parser = instance;
    return instance;
  })();
  await parserLoading;
}

export async function classifyShell(text: string, options: ShellClassifyOptions = {}): Promise<ShellClassification> {
  await loadShellClassifier();
  return classifyShellSync(text, options);
}

export function classifyShellSync(text: string, options: ShellClassifyOptions = {}): ShellClassification {
  if (parser === undefined) throw new Error('tree-sitter-bash is not loaded: await loadShellClassifier() first');
  try {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > maxBytes) throw new ShellClassificationError('SHELL_INPUT_TOO_LARGE', `command is ${bytes} bytes; the limit is ${maxBytes}`);
    if (text.includes('\u0000')) throw new ShellClassificationError('SHELL_INVALID_INPUT', 'command contains a NUL character', text.indexOf('\u0000'));
    if (LONE_SURROGATE.test(text)) throw new ShellClassificationError('SHELL_INVALID_INPUT', 'command contains a lone UTF-16 surrogate');
    const walk = new ShellWalk(parser, options.maxDepth ?? DEFAULT_MAX_DEPTH, options.maxStringDepth ?? DEFAULT_MAX_STRING_DEPTH);
    walk.classifyText(text, [], 0);
    return { ok: true, programs: walk.programs, flags: [...walk.flags].sort() };
  } catch (error) {
    if (error instanceof ShellClassificationError) return { ok: false, error };
    if (error instanceof RangeError) return { ok: false, error: new ShellClassificationError('SHELL_TOO_DEEP', error.message) };
    throw error;
  }
}

class ShellWalk {
  readonly programs: ShellProgram[] = [];
  readonly flags = new Set<ShellFlag>();

  constructor(
    private readonly parser: Parser,
    private readonly maxDepth: number,
    private readonly maxStringDepth: number,
  ) {}

  /** Parses program text (the input, or an `sh -c` / `eval` string) and walks it. */
  classifyText(text: string, via: string[], stringDepth: number): void {
    if (stringDepth > this.maxStringDepth) {
      throw new ShellClassificationError('SHELL_TOO_DEEP', `sh -c / eval strings nest deeper than ${this.maxStringDepth} levels`);
    }
    const tree = this.parser.parse(joinLineContinuations(text));
    if (tree === null) throw new ShellClassificationError('SHELL_PARSE_ERROR', 'the shell parser gave no result');
    try {
      const root = tree.rootNode;
      if (root.hasError) {
        const bad = firstError(root);
        throw new ShellClassificationError(
          'SHELL_PARSE_ERROR',
          bad === undefined ? 'shell syntax error' : `shell syntax error at ${bad.isMissing ? `missing ${bad.type}` : JSON.stringify(bad.text.slice(0, 40))}`,
          bad?.startIndex,
        );
      }
      this.walk(root, via, stringDepth, 0);
    } finally {
      tree.delete();
    }
  }

  private walk(node: Node, via: string[], stringDepth: number, depth: number): void {
    if (depth > this.maxDepth) throw new ShellClassificationError('SHELL_TOO_DEEP', `shell syntax nests deeper than ${this.maxDepth} levels`, node.startIndex);
    switch (node.type) {
      case 'command':
        this.command(node, via, stringDepth);
        break;
      case 'declaration_command':
      case 'unset_command': {
        // export/declare/local/readonly/typeset/unset: builtins that change the environment.
        const [keyword, ...rest] = node.children;
        const words = rest.filter((child) => child.isNamed && !isRedirect(child)).map(evaluateWord);
        this.emit({ value: keyword?.text ?? node.type, dynamic: false }, words, via);
        break;
      }
      case 'command_substitution':
        this.flags.add('command-substitution');
        break;
      case 'process_substitution':
        this.flags.add('process-substitution');
        break;
      case 'subshell':
        this.flags.add('subshell');
        break;
      case 'function_definition':
        this.flags.add('function-definition');
        break;
      case 'heredoc_redirect':
        this.flags.add('heredoc');
        break;
      case 'herestring_redirect':
        this.flags.add('here-string');
        break;
      case 'file_redirect':
        if (writesFile(node)) this.flags.add('redirect-to-file');
        break;
      case 'coproc':
        this.flags.add('coprocess');
        break;
      case '&':
        if (!node.isNamed) this.flags.add('background');
        break;
    }
    // Substitutions and redirections inside a command run in the caller's context, not under
    // the command's own wrappers, so children are walked with the outer `via`.
    for (const child of node.children) this.walk(child, via, stringDepth, depth + 1);
  }

  private command(node: Node, via: string[], stringDepth: number): void {
    const nameNode = node.childForFieldName('name');
    if (nameNode === null) return; // assignments only (`A=1`)
    const target = nameNode.firstNamedChild ?? nameNode;
    const words: ShellWord[] = [evaluateWord(target)];
    let afterName = false;
    for (const child of node.children) {
      if (child.equals(nameNode)) {
        afterName = true;
        continue;
      }
      if (afterName && child.isNamed && !isRedirect(child)) words.push(evaluateWord(child));
    }
    this.invoke(words, via, stringDepth);
  }

  /** Resolves wrappers (`sudo`, `env`, `sh -c`…) down to the program that really runs. */
  private invoke(words: ShellWord[], via: string[], stringDepth: number): void {
    const head = words[0];
    if (head === undefined) return;
    if (head.dynamic) {
      this.flags.add('dynamic-command');
      this.emit(head, words.slice(1), via);
      return;
    }
    const name = basename(head.value);
    const args = words.slice(1);

    if (name === 'sudo' || name === 'doas' || name === 'run0') this.flags.add('sudo');

    const wrapper = WRAPPERS[name];
    if (wrapper !== undefined) {
      if (name === 'env') return this.invokeEnv(head, args, via, stringDepth);
      if (name === 'watch') return this.invokeStringCommand(head, args, wrapper, via, stringDepth, 'watch');
      const start = skipOptions(args, wrapper);
      if (start.dynamic) {
        this.flags.add('dynamic-command');
        return this.emit(head, args, via);
      }
      const rest = args.slice(start.index);
      if (rest.length === 0) return this.emit(head, args, via);
      return this.invoke(rest, [...via, name], stringDepth);
    }

    if (SHELLS.has(name)) return this.invokeShell(head, name, args, via, stringDepth);
    if (name === 'su') return this.invokeSu(head, args, via, stringDepth);

    if (name === 'eval') {
      this.flags.add('eval');
      if (args.some((arg) => arg.dynamic)) this.flags.add('dynamic-code');
      this.emit(head, args, via);
      this.classifyText(args.map((arg) => arg.value).join(' '), [...via, 'eval'], stringDepth + 1);
      return;
    }
    if (name === 'source' || name === '.') this.flags.add('source');

    const interpreter = INTERPRETERS[name];
    if (interpreter !== undefined) {
      const inline = interpreter.length === 0 ? args.some((arg) => !arg.value.startsWith('-')) : args.some((arg) => interpreter.includes(arg.value) || interpreter.some((flag) => flag.startsWith('--') && arg.value.startsWith(`${flag}=`)));
      if (inline) this.flags.add('inline-script');
    }

    this.emit(head, args, via);
    if (name === 'find') this.invokeFindExec(args, via, stringDepth);
  }

  private invokeEnv(head: ShellWord, args: ShellWord[], via: string[], stringDepth: number): void {
    let index = 0;
    while (index < args.length) {
      const arg = args[index] as ShellWord;
      if (arg.dynamic) break;
      if (arg.value === '--') {
        index += 1;
        break;
      }
      if (arg.value === '-S' || arg.value === '--split-string' || arg.value.startsWith('--split-string=') || (arg.value.startsWith('-S') && arg.value.length > 2)) {
        // `env -S 'prog args'` splits the string into a command line.
        const inline = arg.value.startsWith('--split-string=') ? arg.value.slice('--split-string='.length) : arg.value.length > 2 && arg.value.startsWith('-S') ? arg.value.slice(2) : args[index + 1]?.value ?? '';
        const consumed = inline === args[index + 1]?.value && !arg.value.includes('=') && arg.value.length === 2 ? 2 : 1;
        const split = inline.split(/\s+/).filter((part) => part !== '').map((value) => ({ value, dynamic: false }));
        return this.invoke([...split, ...args.slice(index + consumed)], [...via, 'env'], stringDepth);
      }
      if (arg.value.startsWith('-')) {
        index += ['-u', '-C', '--unset', '--chdir'].includes(arg.value) ? 2 : 1;
        continue;
      }
      if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(arg.value)) {
        index += 1;
        continue;
      }
      break;
    }
    const rest = args.slice(index);
    if (rest.length === 0) return this.emit(head, args, via);
    this.invoke(rest, [...via, 'env'], stringDepth);
  }

  private invokeShell(head: ShellWord, name: string, args: ShellWord[], via: string[], stringDepth: number): void {
    let index = 0;
    let commandMode = false;
    // `busybox sh -c …`: the applet name comes first.
    if (name === 'busybox') {
      const applet = args[0];
      if (applet === undefined || applet.dynamic || !SHELLS.has(basename(applet.value))) return this.invoke(args.length > 0 ? args : [head], [...via, 'busybox'], stringDepth);
      index = 1;
    }
    while (index < args.length) {
      const arg = args[index] as ShellWord;
      if (arg.dynamic) break;
      if (arg.value === '--' || arg.value === '-') {
        index += 1;
        break;
      }
      if (/^[-+]o$/.test(arg.value) || /^[-+]O$/.test(arg.value) || arg.value === '--rcfile' || arg.value === '--init-file') {
        index += 2;
        continue;
      }
      if (/^[-+][A-Za-z]+$/.test(arg.value)) {
        if (arg.value.startsWith('-') && arg.value.includes('c')) commandMode = true;
        index += 1;
        continue;
      }
      if (arg.value.startsWith('--')) {
        index += 1;
        continue;
      }
      break;
    }
    const operand = args[index];
    if (commandMode) {
      this.emit(head, args, via);
      if (operand === undefined) return;
      if (operand.dynamic) this.flags.add('dynamic-code');
      this.classifyText(operand.value, [...via, `${name} -c`], stringDepth + 1);
      return;
    }
    if (operand === undefined) this.flags.add('shell-from-stdin');
    this.emit(head, args, via);
  }

  private invokeSu(head: ShellWord, args: ShellWord[], via: string[], stringDepth: number): void {
    this.flags.add('sudo');
    this.emit(head, args, via);
    const index = args.findIndex((arg) => arg.value === '-c' || arg.value === '--command' || arg.value.startsWith('--command='));
    if (index === -1) return;
    const flag = args[index] as ShellWord;
    const operand = flag.value.startsWith('--command=') ? { value: flag.value.slice('--command='.length), dynamic: flag.dynamic } : args[index + 1];
    if (operand === undefined) return;
    if (operand.dynamic) this.flags.add('dynamic-code');
    this.classifyText(operand.value, [...via, 'su -c'], stringDepth + 1);
  }

  /** `watch 'cmd'` and similar run their operands joined as a `sh -c` string. */
  private invokeStringCommand(head: ShellWord, args: ShellWord[], spec: WrapperSpec, via: string[], stringDepth: number, label: string): void {
    const start = skipOptions(args, spec);
    const rest = args.slice(start.index);
    this.emit(head, args, via);
    if (rest.length === 0) return;
    if (rest.some((arg) => arg.dynamic) || start.dynamic) this.flags.add('dynamic-code');
    this.classifyText(rest.map((arg) => arg.value).join(' '), [...via, label], stringDepth + 1);
  }

  private invokeFindExec(args: ShellWord[], via: string[], stringDepth: number): void {
    for (let index = 0; index < args.length; index += 1) {
      const action = args[index]?.value;
      if (action !== '-exec' && action !== '-execdir' && action !== '-ok' && action !== '-okdir') continue;
      const end = args.findIndex((arg, i) => i > index && (arg.value === ';' || arg.value === '+'));
      const command = args.slice(index + 1, end === -1 ? args.length : end);
      if (command.length > 0) this.invoke(command, [...via, `find ${action}`], stringDepth);
      if (end === -1) return;
      index = end;
    }
  }

  private emit(head: ShellWord, args: ShellWord[], via: string[]): void {
    this.programs.push({
      name: head.dynamic ? head.value : basename(head.value),
      path: head.value,
      args: args.map((arg) => arg.value),
      via,
      dynamic: head.dynamic,
      dynamicArgs: args.some((arg) => arg.dynamic),
    });
  }
}

function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return slash === -1 ? trimmed : trimmed.slice(slash + 1);
}

/** Index of the first operand after a wrapper's options and fixed operands. */
function skipOptions(args: readonly ShellWord[], spec: WrapperSpec): { index: number; dynamic: boolean } {
  let index = 0;
  while (index < args.length) {
    const arg = args[index] as ShellWord;
    if (arg.dynamic) return { index, dynamic: true };
    const value = arg.value;
    if (value === '--') {
      index += 1;
      break;
    }
    if (value.startsWith('--')) {
      const [option] = value.split('=', 1);
      index += spec.long.includes(option ?? '') && !value.includes('=') ? 2 : 1;
      continue;
    }
    if (value.startsWith('-') && value.length > 1) {
      // Combined short options: the first one taking a value consumes the rest or the next word.
      let consumesNext = false;
      for (let i = 1; i < value.length; i += 1) {
        if (spec.short.includes(value[i] as string)) {
          consumesNext = i === value.length - 1;
          break;
        }
      }
      index += consumesNext ? 2 : 1;
      continue;
    }
    break;
  }
  const operandEnd = index + spec.operands;
  for (let i = index; i < Math.min(operandEnd, args.length); i += 1) if (args[i]?.dynamic) return { index: i, dynamic: true };
  return { index: Math.min(operandEnd, args.length), dynamic: false };
}

function isRedirect(node: Node): boolean {
  return node.type === 'file_redirect' || node.type === 'heredoc_redirect' || node.type === 'herestring_redirect';
}

const HARMLESS_TARGETS = new Set(['/dev/null', '/dev/stdout', '/dev/stderr', '/dev/tty']);

function writesFile(node: Node): boolean {
  const operator = node.children.find((child) => !child.isNamed)?.type ?? '';
  const destination = node.childForFieldName('destination') ?? node.namedChildren.filter((child) => child.type !== 'file_descriptor').at(-1) ?? null;
  if (destination === null) return false;
  const target = evaluateWord(destination);
  if (operator === '>&' || operator === '<&') {
    // `2>&1` duplicates a descriptor; `>&file` (bash) writes a file.
    return operator === '>&' && (target.dynamic || !/^(\d+|-)$/.test(target.value));
  }
  if (!['>', '>>', '&>', '&>>', '>|', '<>'].includes(operator)) return false;
  return target.dynamic || !HARMLESS_TARGETS.has(target.value);
}

function firstError(node: Node): Node | undefined {
  if (node.isError || node.isMissing) return node;
  for (const child of node.children) {
    if (child.hasError || child.isMissing || child.isError) {
      const found = firstError(child);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
