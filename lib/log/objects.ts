// Byte ranges of stored objects (intake objects and log segments), with one typed answer for an
// object that is gone: readers then re-resolve where the offsets live now (see the fetcher).
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { ObjectGoneError } from '../errors.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';

/** Bytes [start, end) of an object. */
export async function getRange(storage: Storage, key: string, start: number, end: number): Promise<Uint8Array> {
  try {
    return await retry(async () => {
      const res = await storage.s3.send(new GetObjectCommand({ Bucket: storage.config.bucket, Key: key, Range: `bytes=${start}-${end - 1}` }));
      return res.Body!.transformToByteArray();
    });
  } catch (err) {
    if ((err as { name?: string }).name === 'NoSuchKey') throw new ObjectGoneError(`object ${key} is gone`, { cause: err });
    throw err;
  }
}
