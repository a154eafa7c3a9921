// The typed API client: paths and schemas generated from services/api/openapi.yaml
// (generated/api-schema.ts, `npm run generate:api-client`). Same-origin requests carry the session
// cookie; the browser adds Sec-Fetch-Site, which the API's CSRF check requires for POSTs.
import createFetchClient from 'openapi-fetch';
import createQueryClient from 'openapi-react-query';
import type { components, paths } from './generated/api-schema';

export const fetchClient = createFetchClient<paths>({ baseUrl: window.location.origin, credentials: 'same-origin' });
export const $api = createQueryClient(fetchClient);

export type Schemas = components['schemas'];
export type Approval = Schemas['Approval'];

/** The `{ error: { code, message } }` body the API refuses with, or undefined for another shape. */
export function apiErrorOf(body: unknown): { code: string; message: string } | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const error = (body as { error: unknown }).error;
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return typeof code === 'string' && typeof message === 'string' ? { code, message } : undefined;
}

/** How often lists refresh while the page is open (live queue, live sessions). */
export const LIVE_REFRESH_MS = 2_000;
