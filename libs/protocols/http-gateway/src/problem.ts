// Error responses: RFC 9457 problem documents for HTTP connections, the Anthropic error shape
// (`{type: 'error', error: {type, message}}`) for Messages API connections so SDKs show the reason.
import type { ServerResponse } from 'node:http';

export interface Problem {
  readonly status: number;
  /** Short machine code, e.g. `POLICY_BLOCKED`. */
  readonly code: string;
  readonly title: string;
  /** What the client is told (names the rule where one decided). */
  readonly detail: string;
  readonly rule?: string | null;
  readonly wwwAuthenticate?: string;
}

const ANTHROPIC_ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  413: 'request_too_large',
  502: 'api_error',
  503: 'overloaded_error',
};

export function problemBody(problem: Problem, style: 'problem' | 'anthropic'): { contentType: string; body: string } {
  if (style === 'anthropic') {
    const message = problem.rule && !problem.detail.includes(problem.rule) ? `${problem.detail} (rule ${problem.rule})` : problem.detail;
    return { contentType: 'application/json', body: JSON.stringify({ type: 'error', error: { type: ANTHROPIC_ERROR_TYPES[problem.status] ?? 'api_error', message } }) };
  }
  return {
    contentType: 'application/problem+json',
    body: JSON.stringify({
      type: `urn:custodian:problem:${problem.code.toLowerCase().replace(/_/g, '-')}`,
      title: problem.title,
      status: problem.status,
      detail: problem.detail,
      ...(problem.rule ? { rule: problem.rule } : {}),
    }),
  };
}

export function sendProblem(res: ServerResponse, problem: Problem, style: 'problem' | 'anthropic', close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { contentType, body } = problemBody(problem, style);
  res.writeHead(problem.status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    ...(problem.wwwAuthenticate ? { 'www-authenticate': problem.wwwAuthenticate } : {}),
    // HTTP/2 forbids connection headers (its streams end on their own).
    ...(close && res.req.httpVersionMajor !== 2 ? { connection: 'close' } : {}),
  });
  res.end(body);
}
