// Provisioning creates the bucket only when S3 says it does not exist.
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type S3rver from 's3rver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorage } from '../../lib/storage.ts';
import { provision } from '../../local/provision.ts';
import { freePort, s3rverOn } from '../../local/stack.ts';
import { testConfig } from '../support/stack.ts';

// An S3 emulator of this file's own, so that its files can be damaged.
const s3Dir = mkdtempSync(join(tmpdir(), 'queue-provision-'));
let s3: S3rver;
let s3Endpoint: string;
beforeAll(async () => {
  const port = await freePort();
  s3 = s3rverOn(s3Dir, port);
  await s3.run();
  s3Endpoint = `http://127.0.0.1:${port}`;
});
afterAll(async () => {
  await s3.close();
  rmSync(s3Dir, { recursive: true, force: true });
});

describe('provision', () => {
  it('provisioning the same names from several processes at once succeeds: a bucket created meanwhile is no error', async () => {
    const config = { ...testConfig(), s3Endpoint };
    // Every HeadBucket goes out before any CreateBucket: all see "no bucket", one creates it.
    await Promise.all([1, 2, 3].map(() => provision(createStorage(config))));
    await provision(createStorage(config));
  });

  it('a bucket S3 cannot read is an error naming the failed check, not a missing bucket to create', async () => {
    const storage = createStorage({ ...testConfig(), s3Endpoint });
    await provision(storage);
    await storage.s3.send(new PutObjectCommand({ Bucket: storage.config.bucket, Key: 'a/b.seg', Body: 'x' }));
    // What a cut-off PUT can leave: s3rver then answers 500 to HeadBucket, which lists the bucket.
    truncateSync(join(s3Dir, storage.config.bucket, 'a', 'b.seg._S3rver_metadata.json'), 0);
    await expect(provision(storage)).rejects.toThrow(`cannot check S3 bucket ${storage.config.bucket} at ${s3Endpoint}: HeadBucket answered HTTP 500`);
  });
});
