// The HTTP listener (reverse proxies and Anthropic Messages API connections under /c/<connection>/),
// built from the `gateways.http` section over the gateway core. Upstream credentials are read by
// reference at each request, so a rotated secret applies at once and no config object holds it.
import { CredentialError, CredentialReference, gatewayLogger } from '@custodian/gateway-kit';
import { HttpGateway, type HttpConnection, type UpstreamCredential } from '@custodian/http-gateway';
import { ConfigError, type HttpConnectionConfig, type LoadedConfig, type SecretRef } from '@custodian/runtime-config';
import type { GatewayCore } from './gateway-core.js';
import { createSessionPipeline } from './session-pipelines.js';

export interface RunningHttpListener {
  readonly gateway: HttpGateway;
  readonly port: number;
  close(): Promise<void>;
}

async function readPem(reference: SecretRef, loaded: LoadedConfig, key: string): Promise<Buffer> {
  try {
    return Buffer.from(await CredentialReference.from(reference, { baseDir: loaded.baseDir }).readBytes());
  } catch (error) {
    if (error instanceof CredentialError) throw new ConfigError('CONFIG_SECRET_UNRESOLVED', `${key}: ${error.message}`);
    throw error;
  }
}

function credentialOf(config: HttpConnectionConfig, index: number, loaded: LoadedConfig): UpstreamCredential {
  const { credential } = config.upstream;
  const key = `gateways.http.connections.${index}.upstream.credential`;
  const reference = CredentialReference.from(credential.secret, { baseDir: loaded.baseDir });
  const held = { secret: () => reference.read(), credentialRef: reference.ref };
  switch (credential.kind) {
    case 'bearer':
      return { kind: 'bearer', ...held };
    case 'basic':
      if (!credential.username) throw new ConfigError('CONFIG_INVALID', `${key}.username: required for kind basic`);
      return { kind: 'basic', username: credential.username, ...held };
    case 'header':
    case 'query':
      if (!credential.name) throw new ConfigError('CONFIG_INVALID', `${key}.name: required for kind ${credential.kind}`);
      return { kind: credential.kind, name: credential.name, ...held };
  }
}

async function connectionOf(config: HttpConnectionConfig, index: number, loaded: LoadedConfig): Promise<HttpConnection> {
  const ca = config.upstream.ca ? await readPem(config.upstream.ca, loaded, `gateways.http.connections.${index}.upstream.ca`) : undefined;
  return {
    name: config.name,
    kind: config.kind,
    upstream: { url: config.upstream.url, credential: credentialOf(config, index, loaded), responseTimeoutMs: config.upstream.responseTimeoutMs, ...(ca ? { ca } : {}) },
    ...(config.maxRequestBodyBytes ? { maxRequestBodyBytes: config.maxRequestBodyBytes } : {}),
    ...(config.maxJsonResponseBytes ? { maxJsonResponseBytes: config.maxJsonResponseBytes } : {}),
    ...(config.maxJsonValueChars ? { maxJsonValueChars: config.maxJsonValueChars } : {}),
    unmaskableResponses: config.unmaskableResponses,
    maskPrompt: config.maskPrompt,
    thinking: config.thinking,
  };
}

/** Starts the HTTP listener as configured (throws ConfigError on an unusable section). */
export async function startHttpListener(core: GatewayCore): Promise<RunningHttpListener> {
  const { loaded, logger } = core;
  const settings = loaded.config.gateways.http;
  const tls = settings.tls ? { cert: await readPem(settings.tls.certificate, loaded, 'gateways.http.tls.certificate'), key: await readPem(settings.tls.key, loaded, 'gateways.http.tls.key') } : undefined;
  if (settings.http2 && !tls) throw new ConfigError('CONFIG_INVALID', 'gateways.http.http2: requires gateways.http.tls (HTTP/2 is offered through TLS ALPN)');
  const connections = await Promise.all(settings.connections.map((connection, index) => connectionOf(connection, index, loaded)));
  const gateway = new HttpGateway({
    host: settings.listen.host,
    port: settings.listen.port,
    ...(tls ? { tls, http2: settings.http2 } : {}),
    connections,
    pipeline: createSessionPipeline(core, settings),
    maxHeaderBytes: settings.maxHeaderBytes,
    headersTimeoutMs: settings.headersTimeoutMs,
    logger: gatewayLogger(logger, { listener: 'http' }),
  });
  await gateway.listen();
  logger.info({ host: settings.listen.host, port: gateway.port, connections: settings.connections.map((c) => c.name), tls: tls !== undefined }, `http gateway listening on ${settings.listen.host}:${gateway.port}`);
  return { gateway, port: gateway.port, close: () => gateway.close() };
}
