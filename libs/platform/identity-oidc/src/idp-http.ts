import { IdentityError } from '@custodian/identity';

export type FetchFunction = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** Bound on discovery documents and key sets: an IdP never needs more, a hostile one gets no further. */
const MAX_IDP_RESPONSE_BYTES = 512 * 1024;

/** A form POST instead of a GET (token introspection); its headers and body are never logged or quoted in errors. */
export interface IdpFormPost {
  readonly form: URLSearchParams;
  readonly authorization: string;
}

/**
 * GETs (or, with `post`, POSTs a form for) a JSON object from an IdP. Any failure (network,
 * timeout, status, size, not JSON) is IDP_UNAVAILABLE: the caller denies, it never falls back to
 * trusting the token.
 */
export async function fetchIdpJson(
  fetchFn: FetchFunction,
  url: string,
  what: string,
  issuer: string,
  timeoutMs: number,
  signal?: AbortSignal,
  post?: IdpFormPost,
): Promise<Record<string, unknown>> {
  const timeout = AbortSignal.timeout(timeoutMs);
  let response: Response;
  try {
    response = await fetchFn(url, {
      ...(post
        ? { method: 'POST', body: post.form, headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded', authorization: post.authorization } }
        : { method: 'GET', headers: { accept: 'application/json' } }),
      // A redirect could point anywhere; IdP metadata is fetched from the configured origin only.
      redirect: 'error',
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
  } catch (cause) {
    const reason = timeout.aborted ? `timed out after ${timeoutMs} ms` : 'unreachable';
    throw new IdentityError('IDP_UNAVAILABLE', `${what} of ${JSON.stringify(issuer)} ${reason} (${url})`, issuer, { cause });
  }
  try {
    if (response.status !== 200) throw new IdentityError('IDP_UNAVAILABLE', `${what} of ${JSON.stringify(issuer)} answered HTTP ${response.status} (${url})`, issuer);
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > MAX_IDP_RESPONSE_BYTES) throw new IdentityError('IDP_UNAVAILABLE', `${what} of ${JSON.stringify(issuer)} is larger than ${MAX_IDP_RESPONSE_BYTES} bytes`, issuer);
    const body = await readBounded(response, MAX_IDP_RESPONSE_BYTES);
    if (body === undefined) throw new IdentityError('IDP_UNAVAILABLE', `${what} of ${JSON.stringify(issuer)} is larger than ${MAX_IDP_RESPONSE_BYTES} bytes`, issuer);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new IdentityError('IDP_UNAVAILABLE', `${what} of ${JSON.stringify(issuer)} is not JSON (${url})`, issuer);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new IdentityError('IDP_UNAVAILABLE', `${what} of ${JSON.stringify(issuer)} is not a JSON object (${url})`, issuer);
    }
    return parsed as Record<string, unknown>;
  } catch (error) {
    await response.body?.cancel().catch(() => undefined);
    if (error instanceof IdentityError) throw error;
    throw new IdentityError('IDP_UNAVAILABLE', `${what} of ${JSON.stringify(issuer)} could not be read (${url})`, issuer, { cause: error });
  }
}

async function readBounded(response: Response, maxBytes: number): Promise<string | undefined> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.byteLength;
    if (total > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
