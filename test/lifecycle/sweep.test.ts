// The hourly sweep: partitions with work are maintained, idle ones cost reads only.
import { expect, it } from 'vitest';
import { testStorage } from '../support/stack.ts';
import { indexItems, lifecyclePartition, text } from './harness.ts';

it('maintains partitions that have work and writes nothing for idle ones', async () => {
  const storage = await testStorage();
  const p = await lifecyclePartition(storage, { 'segment.ms': 1000 });
  for (let i = 0; i < 5; i++) await p.producer.produce(p.topic.name, [{ key: null, value: text(`s${i}`), headers: [], partition: 0 }], '1');
  p.clock.now += 2000;
  expect(await p.maintenance.sweep()).toMatchObject([{ partition: 0, rolled: 1 }]);
  expect(await indexItems(storage, p.pk)).toEqual({ entries: 0, segments: 1 });
  storage.calls.reset();
  expect(await p.maintenance.sweep()).toEqual([]);
  const writes = Object.entries(storage.calls.snapshot()).filter(([op]) => /Put|Update|Delete|Transact|BatchWrite/.test(op));
  expect(writes).toEqual([]);
});
