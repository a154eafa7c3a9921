// A minimal browser for login tests: one cookie jar for 127.0.0.1 (cookies are not per port, as in
// a real browser), manual redirects, and the OIDC provider's development login and consent forms
// submitted like a user would.

export interface BrowserResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly url: string;
  /** The Location header resolved against the request URL. */
  readonly location: URL | undefined;
}

export class TestBrowser {
  readonly cookies = new Map<string, string>();
  /** Every Set-Cookie header received, verbatim, for attribute checks. */
  readonly setCookieHeaders: string[] = [];

  async request(url: string | URL, init: { method?: string; headers?: Record<string, string>; body?: URLSearchParams } = {}): Promise<BrowserResponse> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...init.headers },
      ...(init.body ? { body: init.body } : {}),
    });
    for (const header of response.headers.getSetCookie()) {
      this.setCookieHeaders.push(header);
      const pair = header.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /max-age=0\b/i.test(header)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    const location = response.headers.get('location');
    return { status: response.status, headers: response.headers, text: await response.text(), url: String(url), location: location === null ? undefined : new URL(location, url) };
  }

  /**
   * From the IdP's authorization URL to the redirect back to `callbackPrefix`: follows redirects
   * and submits the dev login (as `subject`) and consent pages. Returns the callback URL, not yet visited.
   */
  async loginAtProvider(authorizationUrl: URL, subject: string, callbackPrefix: string): Promise<URL> {
    let next: { url: string; method: 'GET' | 'POST'; body?: URLSearchParams } = { url: authorizationUrl.toString(), method: 'GET' };
    for (let hop = 0; hop < 20; hop++) {
      const response = await this.request(next.url, {
        method: next.method,
        ...(next.body ? { body: next.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
      });
      if (response.status >= 300 && response.status < 400 && response.location) {
        if (response.location.toString().startsWith(callbackPrefix)) return response.location;
        next = { url: response.location.toString(), method: 'GET' };
        continue;
      }
      const prompt = /name="prompt" value="(\w+)"/.exec(response.text)?.[1];
      if (response.status !== 200 || prompt === undefined) throw new Error(`login stopped at ${next.url} (${response.status})`);
      const form = new URLSearchParams({ prompt });
      if (prompt === 'login') {
        form.set('login', subject);
        form.set('password', 'unused-by-dev-interactions');
      }
      next = { url: next.url, method: 'POST', body: form };
    }
    throw new Error('login did not finish within 20 requests');
  }
}
