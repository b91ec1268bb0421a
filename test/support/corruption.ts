// Shared checks of the codecs' corruption handling.
import { expect } from 'vitest';
import { CorruptDataError } from '../../lib/errors.ts';

/** `fn` must throw CorruptDataError (never decode garbage, never crash otherwise). */
export function expectCorrupt(fn: () => unknown, message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, 'expected CorruptDataError, nothing was thrown').toBeInstanceOf(CorruptDataError);
  if (message) expect((thrown as Error).message).toMatch(message);
}

/** Every single-byte corruption of `bytes` (three flips per byte) is refused by `decode`. */
export function expectEveryFlipRefused(bytes: Uint8Array, decode: (corrupt: Uint8Array) => unknown): void {
  for (let i = 0; i < bytes.length; i++) {
    for (const xor of [0x01, 0x80, 0xff]) {
      const corrupt = bytes.slice();
      corrupt[i]! ^= xor;
      expectCorrupt(() => decode(corrupt));
    }
  }
}
