// Keys and values as the API carries them: UTF-8 strings, or base64 for arbitrary bytes. Buffer is
// used where it exists (Node, Lambda), plain Uint8Array and btoa/atob elsewhere (browsers).

export type Bytes = string | Uint8Array | null | undefined;

const NodeBuffer = (globalThis as { Buffer?: typeof Buffer }).Buffer;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function utf8(value: string): Uint8Array {
  return NodeBuffer ? NodeBuffer.from(value, 'utf8') : encoder.encode(value);
}

export function fromUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function toBase64(value: string | Uint8Array): string {
  const bytes = typeof value === 'string' ? utf8(value) : value;
  if (NodeBuffer) return NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** A Buffer in Node (so `value.toString()` is the text, as with kafkajs), a Uint8Array elsewhere. */
export function fromBase64(value: string): Uint8Array {
  if (NodeBuffer) return NodeBuffer.from(value, 'base64');
  return Uint8Array.from(atob(value), (char) => char.charCodeAt(0));
}

/** Bytes of a key or value (a string's as UTF-8), for batching. */
export function byteLength(value: Bytes): number {
  if (value === null || value === undefined) return 0;
  if (typeof value !== 'string') return value.byteLength;
  return NodeBuffer ? NodeBuffer.byteLength(value, 'utf8') : encoder.encode(value).byteLength;
}
