// Programs that run another program given in their arguments. Each entry says which options
// consume a value, so the wrapped command is found where the wrapper itself would find it.

export interface WrapperSpec {
  /** Short options that take a value (`-u root`, `-uroot`). */
  short: string;
  /** Long options that take a value (`--user root`, `--user=root`). */
  long: readonly string[];
  /** Positional operands before the command (`timeout DURATION cmd`, `flock FILE cmd`). */
  operands: number;
}

export const WRAPPERS: Readonly<Record<string, WrapperSpec>> = {
  sudo: { short: 'ugpCDhrtUTR', long: ['--user', '--group', '--prompt', '--close-from', '--chdir', '--host', '--role', '--type', '--other-user', '--command-timeout', '--chroot'], operands: 0 },
  doas: { short: 'uC', long: [], operands: 0 },
  env: { short: 'uCS', long: ['--unset', '--chdir', '--split-string', '--block-signal', '--default-signal', '--ignore-signal'], operands: 0 },
  xargs: { short: 'IiLlnPsdEa', long: ['--max-lines', '--max-args', '--max-procs', '--max-chars', '--delimiter', '--eof', '--arg-file', '--replace', '--process-slot-var'], operands: 0 },
  nice: { short: 'n', long: ['--adjustment'], operands: 0 },
  timeout: { short: 'sk', long: ['--signal', '--kill-after'], operands: 1 },
  nohup: { short: '', long: [], operands: 0 },
  exec: { short: 'a', long: [], operands: 0 },
  command: { short: '', long: [], operands: 0 },
  builtin: { short: '', long: [], operands: 0 },
  time: { short: 'fo', long: ['--format', '--output'], operands: 0 },
  stdbuf: { short: 'ioe', long: ['--input', '--output', '--error'], operands: 0 },
  ionice: { short: 'cnpPu', long: ['--class', '--classdata', '--pid', '--pgid', '--uid'], operands: 0 },
  setsid: { short: '', long: [], operands: 0 },
  chrt: { short: '', long: [], operands: 1 },
  taskset: { short: '', long: [], operands: 1 },
  flock: { short: 'wEc', long: ['--timeout', '--conflict-exit-code', '--command'], operands: 1 },
  unbuffer: { short: '', long: [], operands: 0 },
  chroot: { short: '', long: ['--userspec', '--groups'], operands: 1 },
  runuser: { short: 'ugc', long: ['--user', '--group', '--command'], operands: 0 },
  strace: { short: 'eoOpPsSuUbIXa', long: [], operands: 0 },
  ltrace: { short: 'eoplsSuna', long: [], operands: 0 },
  watch: { short: 'nd', long: ['--interval', '--differences'], operands: 0 },
  caffeinate: { short: 'tw', long: [], operands: 0 },
};

/** Shells whose `-c` argument is a program text, parsed recursively. */
export const SHELLS: ReadonlySet<string> = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'fish', 'rbash', 'tcsh', 'csh', 'busybox']);

/** Interpreters whose inline code (`-c`, `-e`, `--eval`) is not classified further. */
export const INTERPRETERS: Readonly<Record<string, readonly string[]>> = {
  python: ['-c'],
  python2: ['-c'],
  python3: ['-c'],
  perl: ['-e', '-E'],
  ruby: ['-e'],
  node: ['-e', '--eval', '-p', '--print'],
  nodejs: ['-e', '--eval', '-p', '--print'],
  deno: ['eval'],
  bun: ['-e', '--eval'],
  php: ['-r'],
  lua: ['-e'],
  osascript: ['-e'],
  awk: [],
  psql: ['-c', '--command'],
  mysql: ['-e', '--execute'],
  sqlite3: [],
};
