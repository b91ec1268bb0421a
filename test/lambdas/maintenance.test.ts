// The maintenance function's adapter against the local stack: which partitions a stream batch
// maintains, how a failing partition is reported without stopping the others, and the sweep.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { maintenanceHandler } from '../../lambdas/maintenance.ts';
import { Maintenance } from '../../lib/lifecycle/maintenance.ts';
import { Leases } from '../../lib/lifecycle/lease.ts';
import { HEAD_OFFSET, logPartitionKey, partitionOf, segmentsPartitionKey, STATE_OFFSET } from '../../lib/log/keys.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer } from '../../lib/log/sequencer.ts';
import type { Storage } from '../../lib/storage.ts';
import { createTopic, type Topic } from '../../lib/topics/topic-store.ts';
import { withDynamoFaults } from '../support/faults.ts';
import { logStreamEvent, scheduledEvent } from '../support/lambda-runtime.ts';
import { testStorage } from '../support/stack.ts';

let storage: Storage;
let topicCount = 0;

beforeAll(async () => {
  storage = await testStorage();
});

/** A topic whose batches are due for a segment as soon as they are committed, with one record per partition. */
async function activeTopic(partitions: number): Promise<Topic> {
  const topic = await createTopic(storage, { name: `maint-${topicCount++}`, partitions, config: { 'segment.ms': 1 } });
  const producer = new Producer(storage, new Sequencer(storage));
  for (let partition = 0; partition < partitions; partition++) {
    await producer.produce(topic.name, [{ key: null, value: new TextEncoder().encode(`p${partition}`), headers: [], partition }]);
  }
  return topic;
}

async function segmentsOf(topic: Topic, partition: number): Promise<number> {
  return (await new Leases(storage).stateOf(logPartitionKey(topic.topicId, partition))).segmentCount;
}

function handlerOn(on: Storage) {
  const maintenance = new Maintenance(on, new Sequencer(on));
  return { maintenance, handler: maintenanceHandler(on, maintenance) };
}

describe('partitionOf', () => {
  it('parses partition log keys and nothing else of the log table', () => {
    expect(partitionOf('6f1c2d3e-aaaa-bbbb-cccc-0123456789ab/12')).toEqual({ topicId: '6f1c2d3e-aaaa-bbbb-cccc-0123456789ab', partition: 12 });
    for (const other of ['_deleted', '_orphans', 'release#segments/t/2026-01-01/x.seg', 'release#a/1', segmentsPartitionKey('t/0'), 't/0/releasing', 't/01', 't/-1', 't/', '/0']) {
      expect(partitionOf(other), other).toBeUndefined();
    }
  });
});

describe('maintenance handler', () => {
  it('maintains each partition a stream batch has new items of, once, and skips every other key', async () => {
    const topic = await activeTopic(3);
    const { maintenance, handler } = handlerOn(storage);
    const maintained = vi.spyOn(maintenance, 'maintainPartition');
    const pk = (p: number) => logPartitionKey(topic.topicId, p);
    const result = await handler(logStreamEvent([
      { p: pk(0), o: 0 }, { p: pk(0), o: HEAD_OFFSET }, { p: pk(1), o: 0 },
      { p: segmentsPartitionKey(pk(0)), o: 1 }, { p: '_deleted', o: 1 }, { p: '_orphans', o: 1 }, { p: 'release#segments/x/y.seg', o: 0 },
      // A deleted (or never created) topic, and a partition the topic does not list yet.
      { p: logPartitionKey('00000000-0000-0000-0000-000000000000', 0), o: 0 }, { p: pk(3), o: HEAD_OFFSET },
    ]));
    expect(result).toEqual({ batchItemFailures: [] });
    expect(maintained.mock.calls.map(([t, p]) => [t.topicId, p]).sort()).toEqual([[topic.topicId, 0], [topic.topicId, 1]]);
    expect([await segmentsOf(topic, 0), await segmentsOf(topic, 1), await segmentsOf(topic, 2)]).toEqual([1, 1, 0]);
  });

  it('reports a failing partition by its records and still maintains the others', async () => {
    const topic = await activeTopic(2);
    const broken = logPartitionKey(topic.topicId, 1);
    // Partition 1's lease cannot be taken: a non-transient fault, so its maintenance fails.
    const faulty = withDynamoFaults(storage, (command) => {
      const key = command.input.Key as { p?: string; o?: number } | undefined;
      return command.constructor.name === 'UpdateCommand' && key?.p === broken && key.o === STATE_OFFSET ? 'fail-before' : undefined;
    });
    const event = logStreamEvent([{ p: broken, o: 0 }, { p: logPartitionKey(topic.topicId, 0), o: 0 }, { p: broken, o: 1 }]);
    const result = await handlerOn(faulty).handler(event);
    const sequenceOf = (i: number) => event.Records[i]!.dynamodb!.SequenceNumber!;
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceOf(0) }, { itemIdentifier: sequenceOf(2) }] });
    expect(await segmentsOf(topic, 0)).toBe(1);
    expect(await segmentsOf(topic, 1)).toBe(0);
  });

  it('sweeps every partition on a scheduled event, and refuses any other event', async () => {
    const topic = await activeTopic(2);
    const { handler } = handlerOn(storage);
    await handler(scheduledEvent());
    expect([await segmentsOf(topic, 0), await segmentsOf(topic, 1)]).toEqual([1, 1]);
    await expect(handler({} as never)).rejects.toThrow(/stream batches and scheduled events/);
  });
});
