// Byte-level building blocks shared by the binary codecs (intake segments and partition log
// segments): CRC32C, a writer into a buffer sized in advance, and a bounds-checked reader. The
// encodings they implement are specified under Conventions in docs/segment-format.md.
import CRC32C from 'crc-32/crc32c';
import { CorruptDataError } from '../errors.ts';

export const MAX_U32 = 0xffffffff;
/** 8 × 7 bits covers every safe integer (53 bits); longer varints can only be corrupt. */
const MAX_VARINT_BYTES = 8;

/** CRC32C (Castagnoli) as an unsigned 32-bit number; crc-32's table-sliced version is ~13x faster. */
export function crc32c(bytes: Uint8Array): number {
  return CRC32C.buf(bytes) >>> 0;
}

/** A Buffer's subarray() returns Buffers; decoded keys/values should be plain Uint8Array views. */
export function plainView(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Writes into a buffer sized in advance; it never grows or bounds-checks. */
export class ByteWriter {
  pos = 0;
  private readonly view: DataView;
  /** A Buffer over the same memory, for its native UTF-8 writer. */
  private readonly text: Buffer;

  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  u8(value: number): void {
    this.buf[this.pos++] = value;
  }

  u16(value: number): void {
    this.view.setUint16(this.pos, value);
    this.pos += 2;
  }

  u32(value: number): void {
    this.view.setUint32(this.pos, value);
    this.pos += 4;
  }

  patchU32(at: number, value: number): void {
    this.view.setUint32(at, value);
  }

  i64(value: number): void {
    this.view.setBigInt64(this.pos, BigInt(value));
    this.pos += 8;
  }

  bytes(bytes: Uint8Array): void {
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Unsigned LEB128 of a safe integer; arithmetic rather than bitwise ops so values above 2^32 work. */
  uvarint(value: number): void {
    while (value >= 0x80) {
      this.buf[this.pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.buf[this.pos++] = value;
  }

  /**
   * Zigzag varint/varlong of a safe integer. The zigzag value z = 2m + sign (m = n or -n-1) can
   * exceed 2^53 and lose precision as a double, so it is never built: its low 7 bits are the sign
   * plus m's low 6 bits, and z >> 7 is exactly floor(m / 64). Byte-identical to Kafka's encoding.
   */
  zigzag(value: number): void {
    const negative = value < 0;
    const magnitude = negative ? -value - 1 : value;
    const low = ((magnitude % 0x40) << 1) | (negative ? 1 : 0);
    const rest = Math.floor(magnitude / 0x40);
    if (rest === 0) {
      this.buf[this.pos++] = low;
      return;
    }
    this.buf[this.pos++] = low | 0x80;
    this.uvarint(rest);
  }

  nullableBytes(bytes: Uint8Array | null): void {
    if (bytes === null) {
      this.zigzag(-1);
      return;
    }
    this.zigzag(bytes.length);
    this.bytes(bytes);
  }

  utf8(text: string): void {
    const length = Buffer.byteLength(text, 'utf8');
    this.uvarint(length);
    this.text.write(text, this.pos, length, 'utf8');
    this.pos += length;
  }
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bounds-checked reader: every overrun or malformed field throws CorruptDataError. */
export class ByteReader {
  pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  corrupt(message: string): CorruptDataError {
    return new CorruptDataError(`${this.what}: ${message} (at byte ${this.pos})`);
  }

  private need(count: number): void {
    if (count > this.buf.length - this.pos) throw this.corrupt(`needs ${count} more bytes, only ${this.buf.length - this.pos} left`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const value = this.view.getUint16(this.pos);
    this.pos += 2;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.pos);
    this.pos += 4;
    return value;
  }

  i64(): number {
    this.need(8);
    const value = Number(this.view.getBigInt64(this.pos));
    if (!Number.isSafeInteger(value)) throw this.corrupt(`i64 ${value} is beyond the safe integer range`);
    this.pos += 8;
    return value;
  }

  bytes(length: number): Uint8Array {
    this.need(length);
    return this.buf.subarray(this.pos, (this.pos += length));
  }

  uvarint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw this.corrupt('varint beyond the safe integer range');
        return value;
      }
      scale *= 0x80;
    }
    throw this.corrupt(`varint longer than ${MAX_VARINT_BYTES} bytes`);
  }

  /** Inverse of ByteWriter.zigzag. */
  zigzag(): number {
    const first = this.u8();
    const low = (first & 0x7f) >>> 1;
    const magnitude = first < 0x80 ? low : this.uvarint() * 0x40 + low;
    if (!Number.isSafeInteger(magnitude)) throw this.corrupt('zigzag varint beyond the safe integer range');
    return first & 1 ? -magnitude - 1 : magnitude;
  }

  nullableBytes(): Uint8Array | null {
    const length = this.zigzag();
    if (length === -1) return null;
    if (length < -1) throw this.corrupt(`negative length ${length}`);
    return this.bytes(length);
  }

  utf8(): string {
    const bytes = this.bytes(this.uvarint());
    try {
      return utf8Decoder.decode(bytes);
    } catch (err) {
      throw new CorruptDataError(`${this.what}: header key is not valid UTF-8`, { cause: err });
    }
  }

  /** Reads a record's length prefix and returns where the record must end. */
  lengthPrefixedEnd(): number {
    const length = this.uvarint();
    this.need(length);
    return this.pos + length;
  }
}
