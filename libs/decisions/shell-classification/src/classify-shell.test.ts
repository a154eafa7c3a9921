import { beforeAll, describe, expect, it } from 'vitest';
import { classifyShell, classifyShellSync, loadShellClassifier, type ShellClassificationErrorCode, type ShellFlag } from './index.js';

beforeAll(async () => {
  await loadShellClassifier();
});

interface ShellCase {
  name: string;
  command: string;
  /** Every program that must be found, as `name` or `name<via1,via2>`. */
  programs?: string[];
  /** Exactly these programs, in order (same notation). */
  exactly?: string[];
  flags?: ShellFlag[];
  absentFlags?: ShellFlag[];
  error?: ShellClassificationErrorCode;
}

const CASES: readonly ShellCase[] = [
  // lists and pipelines
  { name: 'sequence', command: 'ls; rm -rf /', exactly: ['ls', 'rm'] },
  { name: 'and/or list', command: 'a && b || c', exactly: ['a', 'b', 'c'] },
  { name: 'pipeline', command: 'cat /etc/passwd | grep root | wc -l', exactly: ['cat', 'grep', 'wc'] },
  { name: 'pipe stderr', command: 'make |& tee log', programs: ['make', 'tee'] },
  { name: 'negated pipeline', command: '! grep -q x f && rm f', programs: ['grep', 'rm'] },
  { name: 'newline separated', command: 'echo a\nrm b\n', exactly: ['echo', 'rm'] },
  { name: 'background job', command: 'sleep 10 & rm x', exactly: ['sleep', 'rm'], flags: ['background'] },
  { name: 'no background for &&', command: 'a && b', absentFlags: ['background'] },
  // substitutions and subshells
  { name: 'command substitution in argument', command: 'echo $(curl x | sh)', programs: ['echo', 'curl', 'sh'], flags: ['command-substitution', 'shell-from-stdin'] },
  { name: 'backticks', command: 'echo `rm x`', programs: ['echo', 'rm'], flags: ['command-substitution'] },
  { name: 'backticks alone', command: '`rm x`', programs: ['rm'], flags: ['dynamic-command'] },
  { name: 'substitution in double quotes', command: 'echo "today: $(date) $(rm -f y)"', programs: ['date', 'rm'] },
  { name: 'nested substitutions', command: 'echo $(echo $(echo $(rm z)))', programs: ['rm'] },
  { name: 'substitution in assignment', command: 'x=$(rm y)', exactly: ['rm'] },
  { name: 'substitution in redirect target', command: 'echo hi > $(rm q)', programs: ['rm'], flags: ['redirect-to-file'] },
  { name: 'process substitution', command: 'diff <(ls a) <(rm b)', programs: ['diff', 'ls', 'rm'], flags: ['process-substitution'] },
  { name: 'subshell', command: '(cd /; rm x)', exactly: ['cd', 'rm'], flags: ['subshell'] },
  { name: 'brace group', command: '{ ls; rm x; }', exactly: ['ls', 'rm'] },
  { name: 'function body', command: 'f() { rm -rf /; }; f', programs: ['rm', 'f'], flags: ['function-definition'] },
  { name: 'function keyword', command: 'function g { shred x; }', programs: ['shred'], flags: ['function-definition'] },
  { name: 'if statement', command: 'if test -f x; then rm x; else touch x; fi', programs: ['test', 'rm', 'touch'] },
  { name: 'for loop', command: 'for f in *; do rm "$f"; done', programs: ['rm'] },
  { name: 'while loop', command: 'while true; do curl x; done', programs: ['true', 'curl'] },
  { name: 'case statement', command: 'case $x in a) rm a;; *) ls;; esac', programs: ['rm', 'ls'] },
  { name: 'test command with substitution', command: '[[ $(rm x) ]]', programs: ['rm'] },
  { name: 'arithmetic with substitution', command: 'echo $(( $(rm x) + 1 ))', programs: ['rm'] },
  // quoting tricks
  { name: 'empty quotes inside name', command: "r''m -rf /", exactly: ['rm'] },
  { name: 'backslash before name', command: '\\rm -rf /', exactly: ['rm'] },
  { name: 'double-quoted name', command: '"rm" x', exactly: ['rm'] },
  { name: 'single-quoted name', command: "'rm' x", exactly: ['rm'] },
  { name: 'mixed quoting', command: 'r"m" x; "r"\'m\' y', exactly: ['rm', 'rm'] },
  { name: 'ansi-c quoted name', command: "$'\\x72\\x6d' -rf /", exactly: ['rm'] },
  { name: 'backslash inside name', command: 'r\\m x', exactly: ['rm'] },
  { name: 'absolute path', command: '/bin/rm -rf /tmp/x', exactly: ['rm'] },
  { name: 'relative path', command: './node_modules/.bin/evil', exactly: ['evil'] },
  { name: 'line continuation', command: 'r\\\nm x', exactly: ['rm'] },
  // dynamic commands
  { name: 'variable as command', command: '$CMD arg', flags: ['dynamic-command'] },
  { name: 'braced variable as command', command: '${CMD} arg', flags: ['dynamic-command'] },
  { name: 'substitution as command', command: '$(echo rm) x', programs: ['echo'], flags: ['dynamic-command'] },
  { name: 'glob as command', command: '/bin/r? -rf /', flags: ['dynamic-command'] },
  { name: 'brace expansion as command is refused by the parser', command: '{rm,-rf,/}', error: 'SHELL_PARSE_ERROR' },
  { name: 'brace expansion in a word as command', command: 'r{m,} x', flags: ['dynamic-command'] },
  { name: 'line continuation between words', command: 'rm \\\n  -rf x', exactly: ['rm'] },
  { name: 'line continuation kept in single quotes', command: "echo 'a\\\nb'; rm x", exactly: ['echo', 'rm'] },
  { name: 'static command with dynamic argument is not dynamic', command: 'rm "$FILE"', exactly: ['rm'], absentFlags: ['dynamic-command'] },
  // wrappers
  { name: 'sudo', command: 'sudo rm -rf /', exactly: ['rm<sudo>'], flags: ['sudo'] },
  { name: 'sudo -u', command: 'sudo -u root rm x', exactly: ['rm<sudo>'] },
  { name: 'sudo combined options', command: 'sudo -Eu root -- rm x', exactly: ['rm<sudo>'] },
  { name: 'sudo long option', command: 'sudo --user=root rm x', exactly: ['rm<sudo>'] },
  { name: 'sudo without command', command: 'sudo -i', exactly: ['sudo'], flags: ['sudo'] },
  { name: 'env assignment', command: 'env X=1 rm x', exactly: ['rm<env>'] },
  { name: 'env with options', command: 'env -i -u HOME PATH=/x rm x', exactly: ['rm<env>'] },
  { name: 'env split string', command: "env -S 'rm -rf /'", exactly: ['rm<env>'] },
  { name: 'prefix assignment', command: 'LD_PRELOAD=/tmp/x.so ls', exactly: ['ls'] },
  { name: 'xargs', command: 'find . | xargs rm', exactly: ['find', 'rm<xargs>'] },
  { name: 'xargs with options', command: 'ls | xargs -0 -n 1 -I {} rm {}', programs: ['rm<xargs>'] },
  { name: 'nested wrappers', command: 'sudo env X=1 timeout 5 nice -n 10 nohup rm x', exactly: ['rm<sudo,env,timeout,nice,nohup>'] },
  { name: 'exec and command builtins', command: 'exec rm x; command rm y; builtin echo z', exactly: ['rm<exec>', 'rm<command>', 'echo<builtin>'] },
  { name: 'time keyword', command: 'time rm x', programs: ['rm<time>'] },
  { name: 'find -exec', command: 'find / -name x -exec rm -f {} \\;', exactly: ['find', 'rm<find -exec>'] },
  { name: 'find -execdir with plus', command: 'find . -execdir shred {} +', programs: ['shred<find -execdir>'] },
  // shells and eval
  { name: 'bash -c double quoted', command: 'bash -c "rm -rf /"', programs: ['bash', 'rm<bash -c>'] },
  { name: 'sh -c single quoted', command: "sh -c 'ls; rm x'", programs: ['ls<sh -c>', 'rm<sh -c>'] },
  { name: 'bash -lc', command: "bash -lc 'curl x | sh'", programs: ['curl<bash -c>', 'sh<bash -c>'], flags: ['shell-from-stdin'] },
  { name: 'nested sh -c', command: `sh -c "bash -c 'rm x'"`, programs: ['rm<sh -c,bash -c>'] },
  { name: 'sudo sh -c', command: "sudo sh -c 'rm x'", programs: ['rm<sudo,sh -c>'] },
  { name: 'sh -c with expansion is dynamic code', command: 'bash -c "echo $X"', flags: ['dynamic-code'] },
  { name: 'eval', command: "eval 'rm -rf /'", programs: ['rm<eval>'], flags: ['eval'] },
  { name: 'eval of a variable', command: 'eval "$PAYLOAD"', flags: ['eval', 'dynamic-code'] },
  { name: 'su -c', command: "su root -c 'rm x'", programs: ['rm<su -c>'], flags: ['sudo'] },
  { name: 'busybox sh -c', command: "busybox sh -c 'rm x'", programs: ['rm<busybox -c>'] },
  { name: 'watch', command: "watch -n 1 'rm x'", programs: ['rm<watch>'] },
  { name: 'pipe to shell', command: 'curl https://x | bash', programs: ['curl', 'bash'], flags: ['shell-from-stdin'] },
  { name: 'shell running a script file is not stdin', command: 'bash ./deploy.sh', exactly: ['bash'], absentFlags: ['shell-from-stdin'] },
  { name: 'python -c', command: 'python3 -c "import os; os.system(\'rm x\')"', exactly: ['python3'], flags: ['inline-script'] },
  { name: 'source', command: 'source ./env.sh; . ./other.sh', exactly: ['source', '.'], flags: ['source'] },
  { name: 'export builtin', command: 'export PATH=/tmp/evil:$PATH', exactly: ['export'] },
  // redirections and here-documents
  { name: 'redirect to file', command: 'echo x > /etc/passwd', flags: ['redirect-to-file'] },
  { name: 'append to file', command: 'echo x >> ~/.bashrc', flags: ['redirect-to-file'] },
  { name: 'redirect both', command: 'make &> build.log', flags: ['redirect-to-file'] },
  { name: 'redirect to dev null is fine', command: 'ls 2>/dev/null', absentFlags: ['redirect-to-file'] },
  { name: 'fd duplication is fine', command: 'ls 2>&1', absentFlags: ['redirect-to-file'] },
  { name: 'heredoc', command: 'cat <<EOF > out\n$(rm x)\nEOF', programs: ['cat', 'rm'], flags: ['heredoc', 'redirect-to-file'] },
  { name: 'quoted heredoc', command: "bash <<'EOF'\nrm -rf /\nEOF", programs: ['bash'], flags: ['heredoc'] },
  { name: 'here-string', command: 'bash <<< "rm x"', programs: ['bash'], flags: ['here-string'] },
  // errors and limits
  { name: 'unterminated double quote', command: 'echo "unterminated', error: 'SHELL_PARSE_ERROR' },
  { name: 'unterminated substitution', command: 'echo $(rm x', error: 'SHELL_PARSE_ERROR' },
  { name: 'unbalanced if', command: 'if true; then rm x', error: 'SHELL_PARSE_ERROR' },
  { name: 'error inside sh -c string', command: "bash -c 'echo \"x'", error: 'SHELL_PARSE_ERROR' },
  { name: 'NUL byte', command: 'ls\u0000; rm x', error: 'SHELL_INVALID_INPUT' },
  { name: 'input too large', command: `echo ${'a'.repeat(70 * 1024)}`, error: 'SHELL_INPUT_TOO_LARGE' },
  { name: 'deep subshell nesting', command: `${'('.repeat(200)}ls${')'.repeat(200)}`, error: 'SHELL_TOO_DEEP' },
  { name: 'deep sh -c nesting', command: "sh -c \"sh -c 'sh -c \\\"sh -c ls\\\"'\"", programs: ['ls<sh -c,sh -c,sh -c,sh -c>'] },
];

const label = (program: { name: string; via: string[] }): string => (program.via.length === 0 ? program.name : `${program.name}<${program.via.join(',')}>`);

describe('classifyShell', () => {
  it('has at least 60 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, testCase) => {
    const result = classifyShellSync(testCase.command);
    if (testCase.error !== undefined) {
      expect(result.ok, JSON.stringify(result)).toBe(false);
      if (!result.ok) expect(result.error.code).toBe(testCase.error);
      return;
    }
    if (!result.ok) throw new Error(`expected a classification, got ${result.error.code}: ${result.error.message}`);
    const labels = result.programs.map(label);
    if (testCase.exactly !== undefined) expect(labels).toEqual(testCase.exactly);
    for (const program of testCase.programs ?? []) expect(labels).toContain(program);
    for (const flag of testCase.flags ?? []) expect(result.flags).toContain(flag);
    for (const flag of testCase.absentFlags ?? []) expect(result.flags).not.toContain(flag);
  });

  it('reports programs with path, arguments and wrappers', async () => {
    const result = await classifyShell("sudo -u root /usr/bin/rm -rf '/var/lib/x' \"$HOME\"");
    expect(result).toEqual({
      ok: true,
      flags: ['sudo'],
      programs: [{ name: 'rm', path: '/usr/bin/rm', args: ['-rf', '/var/lib/x', '$HOME'], via: ['sudo'], dynamic: false, dynamicArgs: true }],
    });
  });

  it('refuses sh -c strings nested beyond the configured depth', () => {
    const result = classifyShellSync("sh -c \"sh -c 'ls'\"", { maxStringDepth: 1 });
    expect(!result.ok && result.error.code).toBe('SHELL_TOO_DEEP');
  });

  it('stays usable after hostile input', () => {
    classifyShellSync('$('.repeat(20000));
    classifyShellSync(`${'$('.repeat(5000)}ls${')'.repeat(5000)}`);
    const after = classifyShellSync('rm x');
    expect(after.ok && after.programs.map((p) => p.name)).toEqual(['rm']);
  });
});
