// Brings an s3rver data directory back to a state s3rver can serve after the process was killed in
// the middle of a PUT. s3rver keeps an object as three files, written one after the other by its
// PutObject (and never synced):
//   <key>._S3rver_object          the bytes (a PUT of an existing key truncates and rewrites it)
//   <key>._S3rver_object.md5      the MD5 of the bytes, 32 hex digits, written once all bytes arrived
//   <key>._S3rver_metadata.json   the stored headers, as JSON
// and it answers the PUT only after the last one. A kill can stop it before or inside any of these
// writes; an unparsable metadata file then makes every listing of the bucket, HeadBucket included,
// answer 500. Creating a bucket is one mkdir; the server uses no other S3 operation that writes.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const OBJECT = '._S3rver_object';
const MD5 = '._S3rver_object.md5';
const METADATA = '._S3rver_metadata.json';

function readOrUndefined(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function isJsonObject(bytes: Buffer): boolean {
  try {
    const value: unknown = JSON.parse(bytes.toString('utf8'));
    return typeof value === 'object' && value !== null;
  } catch {
    return false;
  }
}

/**
 * Repairs every object under `directory` (s3rver's root: one directory per bucket) and returns one
 * line per object it changed. An object whose bytes match their MD5 file is complete: a missing or
 * torn metadata file is replaced by empty metadata (only headers the server never reads are lost).
 * Any other object never finished its PUT, so no caller ever heard it succeed: its files are
 * removed. Every step is idempotent, so a kill during the repair is repaired by the next run.
 */
export function repairS3rverStore(directory: string): string[] {
  const repaired: string[] = [];
  const visit = (dir: string) => {
    const entries = readdirSync(dir, { withFileTypes: true });
    const objects = new Set<string>();
    for (const entry of entries) {
      if (entry.isDirectory()) visit(join(dir, entry.name));
      else for (const suffix of [OBJECT, MD5, METADATA]) if (entry.name.endsWith(suffix)) objects.add(join(dir, entry.name.slice(0, -suffix.length)));
    }
    for (const base of objects) {
      const name = relative(directory, base);
      const bytes = readOrUndefined(base + OBJECT);
      const md5 = readOrUndefined(base + MD5)?.toString('utf8');
      if (bytes && md5 === createHash('md5').update(bytes).digest('hex')) {
        const metadata = readOrUndefined(base + METADATA);
        if (metadata && isJsonObject(metadata)) continue;
        writeFileSync(base + METADATA, '{}');
        repaired.push(`${name}: replaced ${metadata ? 'unreadable' : 'missing'} metadata`);
      } else {
        // In any order: whatever a kill leaves of them still reads as incomplete next time.
        for (const suffix of [OBJECT, MD5, METADATA]) rmSync(base + suffix, { force: true });
        repaired.push(`${name}: removed an object whose upload never completed`);
      }
    }
  };
  visit(directory);
  return repaired;
}
