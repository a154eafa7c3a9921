export type WireProtocolErrorCode =
  /** A length word announces more than the configured maximum (checked before anything is buffered). */
  | 'WIRE_MESSAGE_TOO_LARGE'
  /** A length word is below the minimum a message can have. */
  | 'WIRE_INVALID_LENGTH'
  /** A message's body does not match its type's layout (truncated field, missing terminator, trailing bytes). */
  | 'WIRE_MALFORMED'
  /** A type byte (or startup code) this side of the protocol does not define. */
  | 'WIRE_UNKNOWN_MESSAGE';

/** The peer broke the wire protocol. The message names the message type and the problem, never the payload. */
export class WireProtocolError extends Error {
  override readonly name = 'WireProtocolError';
  constructor(
    readonly code: WireProtocolErrorCode,
    message: string,
  ) {
    super(message);
  }
}
