// Transactions over HTTP API v1 against the emulators: read_committed readers stop at the last
// stable offset and never see aborted records; commit makes writes to several topics and the group
// offsets visible together; a new producer with the same transactional id fences the old one and
// aborts what it left open; a timed-out transaction is aborted by the reader or the compaction it
// blocks; compaction keeps only committed data.
import { beforeAll, describe, expect, it } from 'vitest';
import { logPartitionKey } from '../../lib/log/keys.ts';
import { getTopic } from '../../lib/topics/topic-store.ts';
import { TxnProducer, committedValues } from './transactional-producer.ts';
import { Api, expectError, startApi, type FetchReply } from '../api/client.ts';

let api: Api;
beforeAll(async () => {
  api = await startApi();
});

let counter = 0;
async function topic(partitions = 1, config?: Record<string, unknown>): Promise<string> {
  const name = `txn-${counter++}`;
  await api.createTopic(name, partitions, config);
  return name;
}

async function read(name: string, isolation: 'read_committed' | 'read_uncommitted', partition = 0): Promise<FetchReply> {
  return api.fetch(name, partition, { offset: 0, isolation });
}

describe('transactions', () => {
  it('read_committed stops at an open transaction; commit makes every write of it visible at once', async () => {
    const [a, b] = [await topic(), await topic()];
    const plain = await api.produce(a, [{ value: 'before', partition: 0 }]);
    const producer = await TxnProducer.init(api, 't-commit');
    expect((await producer.send(a, ['a1', 'a2'])).status).toBe(200);
    expect((await producer.send(b, ['b1'])).status).toBe(200);
    await api.produce(a, [{ value: 'after', partition: 0 }]);
    const open = await read(a, 'read_committed');
    expect(open.records.map((r) => r.value)).toEqual(['before']);
    expect(open.lastStableOffset).toBe(plain[0]!.offset + 1);
    expect(open.highWatermark).toBe(4);
    expect((await read(a, 'read_uncommitted')).records.map((r) => r.value)).toEqual(['before', 'a1', 'a2', 'after']);
    expect(await committedValues(api, b)).toEqual([]);
    expect((await producer.end('commit')).status).toBe(200);
    // A retried commit is answered as before; an abort of the committed transaction is refused.
    expect((await producer.end('commit')).status).toBe(200);
    expectError(await producer.end('abort'), 409, 'INVALID_TXN_STATE', ['committed']);
    expect(await committedValues(api, a)).toEqual(['before', 'a1', 'a2', 'after']);
    expect(await committedValues(api, b)).toEqual(['b1']);
    // The markers take an offset each and read as gaps.
    expect((await read(b, 'read_committed')).highWatermark).toBe(2);
  });

  it('abort hides the transaction from read_committed readers (reported as aborted), not from read_uncommitted', async () => {
    const name = await topic();
    const producer = await TxnProducer.init(api, 't-abort');
    await producer.send(name, ['x1', 'x2']);
    await api.produce(name, [{ value: 'plain', partition: 0 }]);
    expect((await producer.end('abort')).status).toBe(200);
    const committed = await read(name, 'read_committed');
    expect(committed.records.map((r) => r.value)).toEqual(['plain']);
    expect(committed.abortedTransactions).toEqual([{ producerId: producer.identity.producerId, firstOffset: 0 }]);
    expect(committed.lastStableOffset).toBe(committed.highWatermark);
    expect((await read(name, 'read_uncommitted')).records.map((r) => r.value)).toEqual(['x1', 'x2', 'plain']);
    // The next transaction of the same producer commits normally, and only it is visible.
    await producer.send(name, ['y1']);
    await producer.end('commit');
    expect(await committedValues(api, name)).toEqual(['plain', 'y1']);
  });

  it('a new producer with the same transactional id fences the old one and aborts its open transaction', async () => {
    const name = await topic();
    const zombie = await TxnProducer.init(api, 't-fence');
    await zombie.send(name, ['zombie-1']);
    const successor = await TxnProducer.init(api, 't-fence');
    expect(successor.identity.producerId).toBe(zombie.identity.producerId);
    expect(successor.identity.producerEpoch).toBe(zombie.identity.producerEpoch + 1);
    expectError(await zombie.send(name, ['zombie-2']), 409, 'PRODUCER_FENCED');
    expectError(await zombie.end('commit'), 409, 'PRODUCER_FENCED');
    await successor.send(name, ['new-1']);
    await successor.end('commit');
    expect(await committedValues(api, name)).toEqual(['new-1']);
  });

  it('offsets sent to a transaction are committed with it, and not at all if it aborts', async () => {
    const input = await topic();
    const output = await topic();
    await api.produce(input, [{ value: 'i0', partition: 0 }, { value: 'i1', partition: 0 }]);
    const joined = await api.call('POST', '/v1/groups/g-txn/members', { topics: [input] });
    expect(joined.status, JSON.stringify(joined.body)).toBe(201);
    const { memberId } = joined.body;
    let memberEpoch = joined.body.memberEpoch;
    for (let i = 0; i < 5 && !(joined.body.assignment?.length > 0); i++) {
      const hb = await api.call('POST', `/v1/groups/g-txn/members/${memberId}/heartbeat`, { memberEpoch });
      memberEpoch = hb.body.memberEpoch;
      if (hb.body.assignment?.some((a: { topic: string }) => a.topic === input)) break;
    }
    const producer = await TxnProducer.init(api, 't-offsets');
    const offsets = (offset: number) => ({ ...producer.identity, groupId: 'g-txn', memberId, memberEpoch, offsets: [{ topic: input, partition: 0, offset }] });
    await producer.send(output, ['o0']);
    expect((await api.call('POST', `/v1/transactions/${producer.transactionalId}/offsets`, offsets(1))).status).toBe(200);
    await producer.end('abort');
    const committed = async () => (await api.call('GET', '/v1/groups/g-txn')).body;
    expect(JSON.stringify(await committed())).not.toContain('"committedOffset":1');
    await producer.send(output, ['o0-again']);
    expect((await api.call('POST', `/v1/transactions/${producer.transactionalId}/offsets`, offsets(2))).status).toBe(200);
    await producer.end('commit');
    expect(JSON.stringify(await committed())).toContain('"committedOffset":2');
    expect(await committedValues(api, output)).toEqual(['o0-again']);
  });

  it('a transaction past its timeout is aborted by the read_committed reader it blocks, and its producer is fenced', async () => {
    const name = await topic();
    const producer = await TxnProducer.init(api, 't-timeout', 1000);
    await producer.send(name, ['late']);
    await api.produce(name, [{ value: 'plain', partition: 0 }]);
    expect((await read(name, 'read_committed')).records).toEqual([]);
    await new Promise((r) => setTimeout(r, 1200));
    const page = await api.fetch(name, 0, { offset: 0, isolation: 'read_committed', waitMs: 500 });
    expect(page.lastStableOffset).toBe(page.highWatermark);
    expect(await committedValues(api, name)).toEqual(['plain']);
    expectError(await producer.end('commit'), 409, 'PRODUCER_FENCED');
  });

  it('compaction stops at the last stable offset and keeps only committed data in segments', async () => {
    const name = await topic(1, { 'segment.ms': 1000 });
    const producer = await TxnProducer.init(api, 't-compact');
    await api.produce(name, [{ value: 'p0', partition: 0 }]);
    await producer.send(name, ['aborted']);
    await producer.end('abort');
    await producer.send(name, ['kept']);
    await producer.end('commit');
    await producer.send(name, ['open']);
    await new Promise((r) => setTimeout(r, 1100));
    const t = await getTopic(api.storage, name);
    await api.services.maintenance.maintainPartition(t, 0);
    const view = await api.services.sequencer.read(logPartitionKey(t.topicId, 0));
    expect(view.state.segmentsEnd).toBeGreaterThan(0);
    expect(view.state.segmentsEnd).toBeLessThanOrEqual(Math.min(...view.head.openTransactions.map((pin) => pin.first)));
    expect((await api.fetchAll(name, 0)).map((r) => r.value)).toEqual(['p0', 'kept', 'open']);
    expect(await committedValues(api, name)).toEqual(['p0', 'kept']);
    await producer.end('commit');
    expect(await committedValues(api, name)).toEqual(['p0', 'kept', 'open']);
  });

  it('a transaction past its timeout that nobody runs into is aborted by maintenance, which then compacts past it', async () => {
    const name = await topic(1, { 'segment.ms': 1000 });
    const producer = await TxnProducer.init(api, 't-held', 1000);
    await producer.send(name, ['abandoned']);
    await api.produce(name, [{ value: 'plain', partition: 0 }]);
    const t = await getTopic(api.storage, name);
    const pk = logPartitionKey(t.topicId, 0);
    // Not timed out yet: compaction waits below the pin, and the transaction stays open.
    await api.services.maintenance.maintainPartition(t, 0);
    expect((await api.services.sequencer.read(pk)).head.openTransactions).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1200));
    // No reader, no producer call: the maintenance pass alone ends it and rolls everything.
    await api.services.maintenance.maintainPartition(t, 0);
    const view = await api.services.sequencer.read(pk);
    expect(view.head.openTransactions).toEqual([]);
    expect(view.state.segmentsEnd).toBe(view.highWatermark);
    expect(await committedValues(api, name)).toEqual(['plain']);
    expectError(await producer.end('commit'), 409, 'PRODUCER_FENCED');
  });

  it('markers take part in trimming the head: alternating batches and commits keep it small', async () => {
    const name = await topic();
    const producer = await TxnProducer.init(api, 't-trim');
    for (let i = 0; i < 20; i++) {
      expect((await producer.send(name, [`v${i}`])).status).toBe(200);
      expect((await producer.end('commit')).status).toBe(200);
    }
    const t = await getTopic(api.storage, name);
    const { head } = await api.services.sequencer.read(logPartitionKey(t.topicId, 0), { withTail: false });
    // 40 reservations were made; each 8th reservation trims the ones below it.
    expect(head.resv.length).toBeLessThan(16);
    expect(await committedValues(api, name)).toHaveLength(20);
  });
});
