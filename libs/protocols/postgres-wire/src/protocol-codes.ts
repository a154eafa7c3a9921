// Numbers and type bytes from the PostgreSQL frontend/backend protocol 3.0 (protocol.html).

/** StartupMessage protocol version 3.0. */
export const PROTOCOL_VERSION_3_0 = 196_608;
export const SSL_REQUEST_CODE = 80_877_103;
export const GSSENC_REQUEST_CODE = 80_877_104;
export const CANCEL_REQUEST_CODE = 80_877_102;

/** PostgreSQL's own limit on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET_BYTES = 10_000;

const code = (ch: string): number => ch.charCodeAt(0);

/** Type bytes of messages a client sends after the startup phase. */
export const FrontendType = {
  Query: code('Q'),
  Parse: code('P'),
  Bind: code('B'),
  Describe: code('D'),
  Execute: code('E'),
  Sync: code('S'),
  Flush: code('H'),
  Close: code('C'),
  CopyData: code('d'),
  CopyDone: code('c'),
  CopyFail: code('f'),
  FunctionCall: code('F'),
  Terminate: code('X'),
  /** PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse, depending on the authentication state. */
  Password: code('p'),
} as const;

/** Type bytes of messages a server sends. */
export const BackendType = {
  Authentication: code('R'),
  BackendKeyData: code('K'),
  BindComplete: code('2'),
  CloseComplete: code('3'),
  CommandComplete: code('C'),
  CopyData: code('d'),
  CopyDone: code('c'),
  CopyInResponse: code('G'),
  CopyOutResponse: code('H'),
  CopyBothResponse: code('W'),
  DataRow: code('D'),
  EmptyQueryResponse: code('I'),
  ErrorResponse: code('E'),
  FunctionCallResponse: code('V'),
  NegotiateProtocolVersion: code('v'),
  NoData: code('n'),
  NoticeResponse: code('N'),
  NotificationResponse: code('A'),
  ParameterDescription: code('t'),
  ParameterStatus: code('S'),
  ParseComplete: code('1'),
  PortalSuspended: code('s'),
  ReadyForQuery: code('Z'),
  RowDescription: code('T'),
} as const;

const FRONTEND_NAMES = new Map<number, string>(Object.entries(FrontendType).map(([name, type]) => [type, name]));
const BACKEND_NAMES = new Map<number, string>(Object.entries(BackendType).map(([name, type]) => [type, name]));

/** A readable label for a frontend type byte (`Query`, `Bind`, …); unknown bytes as `0x..`. */
export function frontendMessageName(type: number): string {
  return FRONTEND_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

export function backendMessageName(type: number): string {
  return BACKEND_NAMES.get(type) ?? `0x${type.toString(16).padStart(2, '0')}`;
}

export function isFrontendType(type: number): boolean {
  return FRONTEND_NAMES.has(type);
}

export function isBackendType(type: number): boolean {
  return BACKEND_NAMES.has(type);
}

/** Authentication request codes (the int32 after 'R'). */
export const AuthCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** SQLSTATE codes the gateway sends. */
export const SqlState = {
  ProtocolViolation: '08P01',
  ConnectionFailure: '08006',
  SqlclientUnableToEstablishSqlconnection: '08001',
  InvalidAuthorizationSpecification: '28000',
  InvalidPassword: '28P01',
  InsufficientPrivilege: '42501',
  SyntaxError: '42601',
  TooManyConnections: '53300',
  IdleSessionTimeout: '57P05',
  QueryCanceled: '57014',
  AdminShutdown: '57P01',
  FeatureNotSupported: '0A000',
  ProgramLimitExceeded: '54000',
  InternalError: 'XX000',
  ConfigurationLimitExceeded: '53400',
} as const;

/** Transaction status byte of ReadyForQuery. */
export type TransactionStatus = 'I' | 'T' | 'E';
