// Builds outgoing messages: type byte, length word, fields. Sizes are computed first so each
// message is one allocation.

export type Field =
  | { readonly kind: 'byte'; readonly value: number }
  | { readonly kind: 'int16'; readonly value: number }
  | { readonly kind: 'uint16'; readonly value: number }
  | { readonly kind: 'int32'; readonly value: number }
  | { readonly kind: 'cstring'; readonly value: string }
  | { readonly kind: 'bytes'; readonly value: Uint8Array };

export const byte = (value: number): Field => ({ kind: 'byte', value });
export const int16 = (value: number): Field => ({ kind: 'int16', value });
/** A count word: PostgreSQL reads Parse/Bind counts as unsigned (up to 65,535). */
export const uint16 = (value: number): Field => ({ kind: 'uint16', value });
export const int32 = (value: number): Field => ({ kind: 'int32', value });
/** NUL cannot occur inside a C string: it would end the field early and desynchronise the peer, so it is dropped. */
export const cstring = (value: string): Field => ({ kind: 'cstring', value: value.includes('\0') ? value.replaceAll('\0', '') : value });
export const bytes = (value: Uint8Array): Field => ({ kind: 'bytes', value });

function fieldSize(field: Field): number {
  switch (field.kind) {
    case 'byte':
      return 1;
    case 'int16':
    case 'uint16':
      return 2;
    case 'int32':
      return 4;
    case 'cstring':
      return Buffer.byteLength(field.value, 'utf8') + 1;
    case 'bytes':
      return field.value.length;
  }
}

/** A message: `type` (omitted for startup-phase messages, pass `null`), int32 length, then the fields. */
export function message(type: number | null, fields: readonly Field[]): Buffer {
  let size = 4;
  for (const field of fields) size += fieldSize(field);
  const header = type === null ? 0 : 1;
  const out = Buffer.allocUnsafe(header + size);
  let offset = 0;
  if (type !== null) out[offset++] = type;
  out.writeInt32BE(size, offset);
  offset += 4;
  for (const field of fields) {
    switch (field.kind) {
      case 'byte':
        out[offset++] = field.value;
        break;
      case 'int16':
        out.writeInt16BE(field.value, offset);
        offset += 2;
        break;
      case 'uint16':
        out.writeUInt16BE(field.value, offset);
        offset += 2;
        break;
      case 'int32':
        out.writeInt32BE(field.value, offset);
        offset += 4;
        break;
      case 'cstring':
        offset += out.write(field.value, offset, 'utf8');
        out[offset++] = 0;
        break;
      case 'bytes':
        out.set(field.value, offset);
        offset += field.value.length;
        break;
    }
  }
  return out;
}
