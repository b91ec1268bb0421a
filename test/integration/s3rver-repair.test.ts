// The repair of an s3rver directory, on every state a PUT cut off by a kill leaves, checked against
// s3rver itself: afterwards complete objects read back and incomplete ones are gone.
import { mkdtempSync, readdirSync, rmSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { createStorage } from '../../lib/storage.ts';
import { provision } from '../../local/provision.ts';
import { repairS3rverStore } from '../../local/s3rver-repair.ts';
import { freePort, s3rverOn } from '../../local/stack.ts';
import { testConfig } from '../support/stack.ts';

const s3Dir = mkdtempSync(join(tmpdir(), 'queue-repair-'));
afterAll(() => rmSync(s3Dir, { recursive: true, force: true }));

async function withS3rver<T>(use: (storage: ReturnType<typeof createStorage>) => Promise<T>, config = testConfig()): Promise<T> {
  const port = await freePort();
  const s3 = s3rverOn(s3Dir, port);
  await s3.run();
  try {
    return await use(createStorage({ ...config, s3Endpoint: `http://127.0.0.1:${port}` }));
  } finally {
    await s3.close();
  }
}

// Each key, and what a kill at some point of its PUT leaves on disk (files in write order: object, md5, metadata).
const damage: Record<string, (file: (suffix: string) => string) => void> = {
  'complete': () => undefined,
  'metadata-missing': (file) => unlinkSync(file('._S3rver_metadata.json')),
  'metadata-empty': (file) => truncateSync(file('._S3rver_metadata.json'), 0),
  'metadata-torn': (file) => truncateSync(file('._S3rver_metadata.json'), 5),
  'md5-missing': (file) => [file('._S3rver_object.md5'), file('._S3rver_metadata.json')].forEach((f) => unlinkSync(f)),
  'md5-empty': (file) => { truncateSync(file('._S3rver_object.md5'), 0); unlinkSync(file('._S3rver_metadata.json')); },
  // A PUT repeating an existing key truncates the bytes and rewrites them, under the old md5 and metadata.
  'bytes-torn': (file) => truncateSync(file('._S3rver_object'), 3),
  // Removed halfway (by an earlier repair): md5 and metadata without the bytes.
  'bytes-missing': (file) => unlinkSync(file('._S3rver_object')),
};
const kept = ['complete', 'metadata-empty', 'metadata-missing', 'metadata-torn'];

describe('s3rver directory repair', () => {
  it('keeps every object whose bytes match their md5, removes every other, and leaves a bucket s3rver serves', async () => {
    const config = testConfig();
    const bucket = config.bucket;
    const body = (key: string) => `bytes of ${key}`;
    await withS3rver(async (storage) => {
      await provision(storage);
      for (const key of Object.keys(damage)) await storage.s3.send(new PutObjectCommand({ Bucket: bucket, Key: `segments/t/${key}.seg`, Body: body(key) }));
    }, config);
    for (const [key, apply] of Object.entries(damage)) apply((suffix) => join(s3Dir, bucket, 'segments', 't', `${key}.seg${suffix}`));

    const repaired = repairS3rverStore(s3Dir);
    expect(repaired.sort()).toEqual([
      `${bucket}/segments/t/bytes-missing.seg: removed an object whose upload never completed`,
      `${bucket}/segments/t/bytes-torn.seg: removed an object whose upload never completed`,
      `${bucket}/segments/t/md5-empty.seg: removed an object whose upload never completed`,
      `${bucket}/segments/t/md5-missing.seg: removed an object whose upload never completed`,
      `${bucket}/segments/t/metadata-empty.seg: replaced unreadable metadata`,
      `${bucket}/segments/t/metadata-missing.seg: replaced missing metadata`,
      `${bucket}/segments/t/metadata-torn.seg: replaced unreadable metadata`,
    ]);
    expect(readdirSync(join(s3Dir, bucket, 'segments', 't')).filter((f) => !kept.some((k) => f.startsWith(`${k}.seg`)))).toEqual([]);
    expect(repairS3rverStore(s3Dir)).toEqual([]);

    await withS3rver(async (storage) => {
      await storage.s3.send(new HeadBucketCommand({ Bucket: bucket }));
      await provision(storage);
      const listed = await storage.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect(listed.Contents?.map((o) => o.Key).sort()).toEqual(kept.map((k) => `segments/t/${k}.seg`));
      for (const key of kept) {
        const got = await storage.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `segments/t/${key}.seg` }));
        expect(await got.Body!.transformToString()).toBe(body(key));
      }
    }, config);
  });
});
