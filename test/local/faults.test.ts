// The fault layer the fault-injection suite attaches to the local server's AWS clients: each fault
// does what it claims on the real emulator (a lost response was applied, a throttled call was not).
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { injectFaults, parseFaults, type InjectedFault } from '../../local/faults.ts';
import { testStorage } from '../support/stack.ts';

async function storageWith(spec: string) {
  const storage = await testStorage();
  const injected: InjectedFault[] = [];
  injectFaults(storage, parseFaults(spec), (fault) => injected.push(fault));
  return { storage, injected };
}

const item = (o: number) => ({ p: 'fault-test', o });

describe('fault layer', () => {
  it('a lost response: the call was applied, and the caller sees a timeout', async () => {
    const { storage, injected } = await storageWith('seed=1,lose=1');
    await expect(storage.ddb.send(new PutCommand({ TableName: storage.config.logTable, Item: item(1) }))).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(injected).toContain('lose');
    // Read on a client without faults: the put happened.
    const clean = await testStorage({ ...storage.config });
    expect((await clean.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: item(1), ConsistentRead: true }))).Item).toMatchObject(item(1));
  });

  it('a throttled call is not applied, and the SDK sees it as throttling', async () => {
    const { storage, injected } = await storageWith('seed=2,throttle=1');
    await expect(storage.ddb.send(new PutCommand({ TableName: storage.config.logTable, Item: item(2) }))).rejects.toMatchObject({ name: 'ThrottlingException' });
    expect(injected.filter((f) => f === 'throttle').length).toBeGreaterThan(1); // the SDK retried it
    const clean = await testStorage({ ...storage.config });
    expect((await clean.ddb.send(new GetCommand({ TableName: storage.config.logTable, Key: item(2), ConsistentRead: true }))).Item).toBeUndefined();
  });

  it('the same seed injects the same faults; bad specs are refused', () => {
    expect(parseFaults('seed=7,delay=0.5,delayMs=10')).toMatchObject({ seed: 7, delay: 0.5, delayMs: 10, lose: 0, throttle: 0 });
    expect(() => parseFaults('lose=2')).toThrow(/probability/);
    expect(() => parseFaults('explode=1')).toThrow(/not one of/);
  });
});
