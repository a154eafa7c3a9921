import { describe, expect, it } from 'vitest';
import { WebhookSignatureError, signWebhook, verifyWebhookSignature } from './webhook-signature.js';

const secret = 'whsec-test-0123456789';
const deliveryId = '6f1c3e9a-1111-5aaa-8bbb-0123456789ab';
const body = '{"type":"approval.requested"}';
const now = 1_900_000_000;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof WebhookSignatureError ? error.code : String(error);
  }
  return undefined;
}

describe('webhook signatures', () => {
  it('a signed delivery verifies, and the signature covers timestamp, delivery id and body', () => {
    const signature = signWebhook(secret, deliveryId, body, now);
    expect(signature).toMatch(/^t=1900000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature({ secret, signature, deliveryId, body, nowSeconds: now + 10 })).toEqual({ timestamp: now });
    expect(verifyWebhookSignature({ secret, signature, deliveryId, body: Buffer.from(body), nowSeconds: now })).toEqual({ timestamp: now });
  });

  it('refuses a changed body, another delivery id, another secret or a moved timestamp', () => {
    const signature = signWebhook(secret, deliveryId, body, now);
    expect(codeOf(() => verifyWebhookSignature({ secret, signature, deliveryId, body: body.replace('requested', 'granted'), nowSeconds: now }))).toBe('WEBHOOK_SIGNATURE_MISMATCH');
    expect(codeOf(() => verifyWebhookSignature({ secret, signature, deliveryId: deliveryId.replace('6f', '7f'), body, nowSeconds: now }))).toBe('WEBHOOK_SIGNATURE_MISMATCH');
    expect(codeOf(() => verifyWebhookSignature({ secret: 'other', signature, deliveryId, body, nowSeconds: now }))).toBe('WEBHOOK_SIGNATURE_MISMATCH');
    const moved = signature.replace(`t=${now}`, `t=${now + 1}`);
    expect(codeOf(() => verifyWebhookSignature({ secret, signature: moved, deliveryId, body, nowSeconds: now }))).toBe('WEBHOOK_SIGNATURE_MISMATCH');
  });

  it('refuses a replay after the tolerance window (and a timestamp from the future)', () => {
    const signature = signWebhook(secret, deliveryId, body, now);
    expect(codeOf(() => verifyWebhookSignature({ secret, signature, deliveryId, body, nowSeconds: now + 301 }))).toBe('WEBHOOK_SIGNATURE_TIMESTAMP_OUT_OF_RANGE');
    expect(codeOf(() => verifyWebhookSignature({ secret, signature, deliveryId, body, nowSeconds: now - 301 }))).toBe('WEBHOOK_SIGNATURE_TIMESTAMP_OUT_OF_RANGE');
    expect(codeOf(() => verifyWebhookSignature({ secret, signature, deliveryId, body, nowSeconds: now + 50, toleranceSeconds: 30 }))).toBe('WEBHOOK_SIGNATURE_TIMESTAMP_OUT_OF_RANGE');
  });

  it('refuses missing and malformed headers', () => {
    expect(codeOf(() => verifyWebhookSignature({ secret, signature: undefined, deliveryId, body }))).toBe('WEBHOOK_SIGNATURE_MISSING');
    expect(codeOf(() => verifyWebhookSignature({ secret, signature: 't=1', deliveryId: undefined, body }))).toBe('WEBHOOK_SIGNATURE_MISSING');
    expect(codeOf(() => verifyWebhookSignature({ secret, signature: 'v1=abc', deliveryId, body }))).toBe('WEBHOOK_SIGNATURE_MALFORMED');
    expect(codeOf(() => verifyWebhookSignature({ secret, signature: `t=${now}`, deliveryId, body, nowSeconds: now }))).toBe('WEBHOOK_SIGNATURE_MALFORMED');
  });

  it('accepts any of several v1 signatures (secret rotation)', () => {
    const next = signWebhook('new-secret', deliveryId, body, now).split(',')[1];
    const current = signWebhook(secret, deliveryId, body, now);
    expect(verifyWebhookSignature({ secret, signature: `${current},${next}`, deliveryId, body, nowSeconds: now })).toEqual({ timestamp: now });
    expect(verifyWebhookSignature({ secret: 'new-secret', signature: `${current},${next}`, deliveryId, body, nowSeconds: now })).toEqual({ timestamp: now });
  });
});
