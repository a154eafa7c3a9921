// HMAC signatures of webhook deliveries (docs/approvals.md, "Verifying a webhook").
//
//   Custodian-Delivery:  <delivery id>            (UUID; the same on every retry of one notification)
//   Custodian-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<delivery id>.<raw body>")>
//
// The timestamp is signed, so a captured request stops verifying after the tolerance window; the
// delivery id is signed, so a receiver that remembers the ids it accepted within that window
// rejects a replay inside it too. Several v1 entries may be present (secret rotation).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'custodian-signature';
export const DELIVERY_HEADER = 'custodian-delivery';
export const EVENT_HEADER = 'custodian-event';
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

export type WebhookSignatureErrorCode =
  | 'WEBHOOK_SIGNATURE_MISSING'
  | 'WEBHOOK_SIGNATURE_MALFORMED'
  | 'WEBHOOK_SIGNATURE_TIMESTAMP_OUT_OF_RANGE'
  | 'WEBHOOK_SIGNATURE_MISMATCH';

export class WebhookSignatureError extends Error {
  override readonly name = 'WebhookSignatureError';
  constructor(
    readonly code: WebhookSignatureErrorCode,
    message: string,
  ) {
    super(message);
  }
}

function mac(secret: string, timestamp: number, deliveryId: string, body: string | Uint8Array): string {
  const hmac = createHmac('sha256', secret);
  hmac.update(`${timestamp}.${deliveryId}.`);
  hmac.update(body);
  return hmac.digest('hex');
}

/** The `Custodian-Signature` header value for one delivery attempt. */
export function signWebhook(secret: string, deliveryId: string, body: string | Uint8Array, timestampSeconds: number): string {
  return `t=${timestampSeconds},v1=${mac(secret, timestampSeconds, deliveryId, body)}`;
}

export interface VerifyWebhookOptions {
  /** The shared secret (any of several, when rotating: try each). */
  readonly secret: string;
  /** `Custodian-Signature` header value. */
  readonly signature: string | undefined;
  /** `Custodian-Delivery` header value. */
  readonly deliveryId: string | undefined;
  /** The raw request body, byte for byte (verify before parsing it). */
  readonly body: string | Uint8Array;
  readonly toleranceSeconds?: number;
  readonly nowSeconds?: number;
}

/**
 * Checks a delivery: a well-formed header, a timestamp within the tolerance, and a v1 signature
 * matching in constant time. Returns the signed timestamp. The receiver should also refuse a
 * delivery id it already accepted within the tolerance window (replays inside it).
 */
export function verifyWebhookSignature(options: VerifyWebhookOptions): { readonly timestamp: number } {
  const { signature, deliveryId } = options;
  if (!signature || !deliveryId) throw new WebhookSignatureError('WEBHOOK_SIGNATURE_MISSING', 'Custodian-Signature and Custodian-Delivery are required');
  let timestamp: number | undefined;
  const candidates: string[] = [];
  for (const part of signature.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (timestamp === undefined || candidates.length === 0) throw new WebhookSignatureError('WEBHOOK_SIGNATURE_MALFORMED', 'expected t=<unix seconds>,v1=<hex>');
  const now = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  if (Math.abs(now - timestamp) > tolerance) {
    throw new WebhookSignatureError('WEBHOOK_SIGNATURE_TIMESTAMP_OUT_OF_RANGE', `the signature timestamp is more than ${tolerance}s away from now`);
  }
  const expected = Buffer.from(mac(options.secret, timestamp, deliveryId, options.body), 'hex');
  if (!candidates.some((candidate) => timingSafeEqual(Buffer.from(candidate, 'hex'), expected))) {
    throw new WebhookSignatureError('WEBHOOK_SIGNATURE_MISMATCH', 'no v1 signature matches');
  }
  return { timestamp };
}
