import { describe, expect, it } from 'vitest';
import { parseLegacyScp } from './legacy-scp.js';

describe('parseLegacyScp: the exec commands OpenSSH scp -O sends, and nothing else', () => {
  it('recognises sink and source with the flags scp sends', () => {
    expect(parseLegacyScp('scp -t /srv/a.txt')).toEqual({ mode: 'sink', recursive: false, targetIsDirectory: false, paths: ['/srv/a.txt'] });
    expect(parseLegacyScp('scp -v -r -p -d -t -- /srv/dir')).toEqual({ mode: 'sink', recursive: true, targetIsDirectory: true, paths: ['/srv/dir'] });
    expect(parseLegacyScp("scp -f '/srv/my file' /srv/b")).toEqual({ mode: 'source', recursive: false, targetIsDirectory: false, paths: ['/srv/my file', '/srv/b'] });
    expect(parseLegacyScp('scp -f /var/log/*.log')).toMatchObject({ mode: 'source', paths: ['/var/log/*.log'] });
    expect(parseLegacyScp('scp -f "a\\"b"')).toMatchObject({ paths: ['a"b'] });
  });

  it('leaves anything else to the shell language (operators, expansions, other flags, both or neither mode, several sink targets)', () => {
    for (const command of ['scp -t /a; rm -rf /', 'scp -t $(id)', 'scp -f `id`', 'scp -t /a | cat', 'scp -o ProxyCommand=x -t /a', 'scp -t -f /a', 'scp /a /b', 'scp -t /a /b', 'scp -t', 'sh -c "scp -t /a"', "scp -t 'unterminated", 'scp -f ~/x', 'scp -t "$HOME"']) {
      expect(parseLegacyScp(command), command).toBeUndefined();
    }
  });
});
