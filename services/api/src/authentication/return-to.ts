const MAX_RETURN_TO_LENGTH = 2048;
const PROBE_ORIGIN = 'http://custodian.invalid';

/**
 * `returnTo` as a path on this origin, or undefined when it could lead elsewhere (open-redirect
 * guard): it must start with a single `/`, and backslashes, control characters and whitespace
 * are refused outright because browsers read `/\evil.example` and `/\t/evil.example` as
 * another host. What is returned is the URL parser's normalised path, query and fragment.
 */
export function localReturnPath(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_RETURN_TO_LENGTH) return undefined;
  if (!raw.startsWith('/') || raw.startsWith('//')) return undefined;
  if (/[\\\s]/.test(raw) || [...raw].some(isControlCharacter)) return undefined;
  let url: URL;
  try {
    url = new URL(raw, PROBE_ORIGIN);
  } catch {
    return undefined;
  }
  if (url.origin !== PROBE_ORIGIN) return undefined;
  const path = `${url.pathname}${url.search}${url.hash}`;
  return path.startsWith('//') ? undefined : path;
}

function isControlCharacter(character: string): boolean {
  const code = character.codePointAt(0) ?? 0;
  return code < 0x20 || code === 0x7f;
}
