// The lifecycle never changes what producers see: a writer stalled past its gap timeout still
// loses to the tombstone after compaction, and a log start raised past the stored high watermark
// never makes the high watermark go down.
import { beforeAll, expect, it } from 'vitest';
import { deleteRecords } from '../../lib/lifecycle/delete-records.ts';
import { batchRef } from '../../lib/log/producer.ts';
import type { DataEntry } from '../../lib/log/sequencer.ts';
import type { Storage } from '../../lib/storage.ts';
import { testStorage } from '../support/stack.ts';
import { indexItems, lifecyclePartition, replay, text } from './harness.ts';

let storage: Storage;

beforeAll(async () => {
  storage = await testStorage();
});

it('a commit arriving after its reservation was tombstoned and compacted is still fenced, never acknowledged', async () => {
  const p = await lifecyclePartition(storage, { 'segment.ms': 1 });
  await p.producer.produce(p.topic.name, [{ key: null, value: text('before'), headers: [], partition: 0 }], '1');
  // A writer reserves, uploads, and stalls before its commit.
  const plan = await p.producer.prepare(p.topic.name, [{ key: null, value: text('late'), headers: [], partition: 0 }]);
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  if (plan.objectKey) await storage.s3.send(new PutObjectCommand({ Bucket: storage.config.bucket, Key: plan.objectKey, Body: plan.bytes }));
  const { base } = await p.sequencer.reserve(p.pk, 1, 'stalled');
  for (let i = 0; i < 9; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text(`after${i}`), headers: [], partition: 0 }], '1');
  // Its gap timeout passes: a reader tombstones the hole; everything is compacted.
  p.clock.now += 60_000;
  await replay(p.fetcher, p.topic);
  await p.maintain();
  const reference = await replay(p.fetcher, p.topic);
  expect(reference.gaps).toEqual([{ startOffset: base, endOffset: base + 1 }]);
  const { recordCount, ...source } = batchRef(plan, 0);
  const late: DataEntry = { ...source, kind: 'data', base, count: recordCount, token: 'stalled', committedAt: p.clock.now };
  expect(await p.sequencer.commit(p.pk, late)).toBe('fenced');
  expect(await replay(p.fetcher, p.topic)).toEqual(reference);
});

it('a log start raised past the stored high watermark drops nothing the producers\' walk needs: the high watermark never goes down', async () => {
  const p = await lifecyclePartition(storage);
  // acks=1 with the default election: the stored hwm lags the walked high watermark.
  for (let i = 0; i < 6; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text(`v${i}`), headers: [], partition: 0 }], '1');
  const view = await p.sequencer.read(p.pk);
  expect(view.head.hwm).toBeLessThan(view.highWatermark);
  const [logStart] = await deleteRecords(storage, p.sequencer, [{ pk: p.pk }]);
  expect(logStart).toBe(6);
  await p.maintain();
  const after = await p.sequencer.read(p.pk);
  expect(after.highWatermark).toBe(6);
  expect((await p.fetcher.listOffset(p.topic.name, 0, 'latest')).offset).toBe(6);
  await p.producer.produce(p.topic.name, [{ key: null, value: text('next'), headers: [], partition: 0 }], 'all');
  expect((await replay(p.fetcher, p.topic, 6)).records.map((r) => Buffer.from(r.value!, 'hex').toString())).toEqual(['next']);
  expect((await indexItems(storage, p.pk)).entries).toBeLessThanOrEqual(7);
});
