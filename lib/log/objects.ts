// Byte ranges of stored objects (intake objects and log segments), with one typed answer for an
// object that is gone: readers then re-resolve where the offsets live now (see the fetcher).
import { GetObjectCommand, ListObjectsCommand } from '@aws-sdk/client-s3';
import { ObjectGoneError } from '../errors.ts';
import { retry } from '../retry.ts';
import type { Storage } from '../storage.ts';
import type { DataEntry } from './sequencer.ts';

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

/** A data entry's encoded batch: held inline in the entry (no GET), or a byte range of its intake object. */
export async function batchBytes(storage: Storage, entry: DataEntry): Promise<Uint8Array> {
  return entry.inline ?? getRange(storage, entry.objectKey, entry.position, entry.position + entry.length);
}

/** How errors name a data entry's batch. */
export function batchName(entry: DataEntry): string {
  return entry.inline ? `inline batch at offset ${entry.base}` : `batch ${entry.objectKey}@${entry.position}`;
}

/**
 * Every object key under `prefix`, a page (up to 1,000) at a time. ListObjects (v1) with a marker
 * rather than V2: the local S3 emulator cannot continue a V2 listing past its first page.
 */
export async function* keysUnder(storage: Storage, prefix: string): AsyncGenerator<string[]> {
  for (let marker: string | undefined; ;) {
    const page = await retry(() => storage.s3.send(new ListObjectsCommand({ Bucket: storage.config.bucket, Prefix: prefix, Marker: marker })));
    const keys = (page.Contents ?? []).map((o) => o.Key!);
    if (keys.length > 0) yield keys;
    if (!page.IsTruncated || keys.length === 0) return;
    marker = page.NextMarker ?? keys.at(-1);
  }
}
