import { EventFactory } from '@custodian/event-contracts';
import { describe, expect, it } from 'vitest';
import { authenticationFailedPayload, authenticationSucceededPayload } from './authentication-events.js';
import { IdentityError } from './identity-error.js';

const events = new EventFactory({ service: 'gateway', instance: 'identity-test' });
const SESSION = '0190c8e2-0000-7000-8000-000000000000';

describe('authentication event payloads', () => {
  it('turns an IdentityError into authentication.failed with the code as reasonCode', () => {
    const payload = authenticationFailedPayload(new IdentityError('TOKEN_EXPIRED', 'token expired at 2026-01-01T00:00:00.000Z'), {
      method: 'oidc-access-token',
      clientAddress: '127.0.0.1:5555',
      protocol: 'postgres',
      sessionId: '0190c8e2-0000-7000-8000-000000000000',
      claimedSubject: 'agent-7',
    });
    expect(payload).toEqual({
      sessionId: '0190c8e2-0000-7000-8000-000000000000',
      method: 'oidc-access-token',
      protocol: 'postgres',
      clientAddress: '127.0.0.1:5555',
      reasonCode: 'TOKEN_EXPIRED',
      reason: 'token expired at 2026-01-01T00:00:00.000Z',
      claimedSubject: 'agent-7',
    });
    expect(events.create({ type: 'authentication.failed', stream: `session-${SESSION}`, sequence: 1, identity: null, payload }).payload).toEqual(payload);
  });

  it('hides the message of unexpected errors (they could carry anything, a token included)', () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const payload = authenticationFailedPayload(new Error(`boom ${token}`), { method: 'oidc-access-token', clientAddress: '127.0.0.1:1' });
    expect(payload.reasonCode).toBe('IDENTITY_INTERNAL_ERROR');
    expect(JSON.stringify(payload)).not.toContain(token);
    expect(JSON.stringify(payload)).not.toContain('c2lnbmF0dXJl');
  });

  it('builds authentication.succeeded from a verified identity', () => {
    const payload = authenticationSucceededPayload(
      {
        identity: { subject: 'a', issuer: 'https://idp', groups: [], kind: 'agent' },
        tokenId: 'jti-9',
        expiresAt: new Date('2030-01-01T00:00:00Z'),
        issuedAt: new Date('2029-12-31T23:55:00Z'),
        audience: ['x'],
        method: 'oidc-client-credentials',
      },
      { clientAddress: '127.0.0.1:5555', protocol: 'ssh' },
    );
    expect(payload).toEqual({ method: 'oidc-client-credentials', protocol: 'ssh', clientAddress: '127.0.0.1:5555', tokenId: 'jti-9', tokenExpiresAt: '2030-01-01T00:00:00.000Z' });
    const identity = { subject: 'a', issuer: 'https://idp', groups: [], kind: 'agent' as const };
    expect(events.create({ type: 'authentication.succeeded', stream: `session-${SESSION}`, sequence: 1, identity, payload }).payload).toEqual(payload);
  });
});
