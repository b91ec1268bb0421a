import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  costPerGiB, costPerRequest, kinesisOnDemandPerGiB, kinesisStreamMonthly, lambdaBilledMs, monthlyCost, mskServerlessPerGiB, parsePrices,
  readUnitsForBytes, requestsPerGiB, unitsFromCalls, writeUnitsForItem, type RequestUsage,
} from '../../bench/cost-model.ts';

const prices = parsePrices(JSON.parse(readFileSync(new URL('../../bench/prices.json', import.meta.url), 'utf8')));

describe('bench cost model', () => {
  it('reads the dated price table', () => {
    expect(prices.asOf).toBe('2026-11-21');
    expect(() => parsePrices({ ...prices, s3: { ...prices.s3, putPer1000: -1 } })).toThrow(/s3.putPer1000/);
    expect(() => parsePrices({ ...prices, asOf: 'soon' })).toThrow(/asOf/);
    const { deletePer1000: _, ...withoutDeletes } = prices.s3;
    expect(() => parsePrices({ ...prices, s3: withoutDeletes })).toThrow(/s3.deletePer1000/);
  });

  it('prices one 1 MiB produce request and scales it to a GiB (hand-computed)', () => {
    const usage: RequestUsage = { s3Puts: 1, s3Gets: 0, writeUnits: 2, readUnits: 2, lambdaInvocations: 1, lambdaMs: 50, lambdaMemoryMb: 1024 };
    const one = costPerRequest(usage, prices);
    // PUT 0.005/1000 = 5e-6; 2 WRU × 0.625e-6 = 1.25e-6; 2 RRU × 0.125e-6 = 2.5e-7;
    // request 0.2e-6; 0.05 s × 1 GB × 0.0000133334 = 6.6667e-7. Sum 7.36667e-6.
    expect(one.s3Requests).toBeCloseTo(5e-6, 12);
    expect(one.dynamodbWrites).toBeCloseTo(1.25e-6, 12);
    expect(one.dynamodbReads).toBeCloseTo(2.5e-7, 12);
    expect(one.lambdaRequests).toBeCloseTo(2e-7, 12);
    expect(one.lambdaDuration).toBeCloseTo(6.6667e-7, 10);
    expect(one.total).toBeCloseTo(7.36667e-6, 10);
    // 1024 such requests per GiB.
    expect(costPerGiB(usage, 2 ** 20, prices).total).toBeCloseTo(0.00754347, 7);
  });

  it('prices a 1 KiB fetch: GETs and reads, Lambda billed per started millisecond at 512 MB', () => {
    const usage: RequestUsage = { s3Puts: 0, s3Gets: 1, writeUnits: 0, readUnits: 4, lambdaInvocations: 1, lambdaMs: 9.2, lambdaMemoryMb: 512 };
    // 4e-7 + 5e-7 + 2e-7 + 0.010 s × 0.5 GB × 0.0000133334 (6.6667e-8) = 1.16667e-6, × 1,048,576 requests.
    expect(requestsPerGiB(1024)).toBe(1_048_576);
    expect(costPerGiB(usage, 1024, prices).total).toBeCloseTo(1.16667e-6 * 1_048_576, 4);
    expect(lambdaBilledMs(9.2)).toBe(10);
    expect(lambdaBilledMs(0)).toBe(0);
  });

  it('prices the managed alternatives and DynamoDB units', () => {
    expect(kinesisOnDemandPerGiB(prices).inPlusOutPerGiB).toBeCloseTo(0.12, 10);
    expect(mskServerlessPerGiB(prices).inPlusOutPerGiB).toBeCloseTo(0.15, 10);
    expect(kinesisStreamMonthly(prices)).toBeCloseTo(29.2, 10);
    expect([writeUnitsForItem(200), writeUnitsForItem(1024), writeUnitsForItem(1025)]).toEqual([1, 1, 2]);
    expect([readUnitsForBytes(4096, true), readUnitsForBytes(4097, true), readUnitsForBytes(100, false)]).toEqual([1, 2, 0.5]);
    expect(unitsFromCalls({ calls: { 'dynamodb.UpdateItem': 9, 'dynamodb.PutItem': 8, 'dynamodb.GetItem': 8, 'dynamodb.Query': 8, 's3.PutObject': 8 } })).toEqual({ writeUnits: 17, readUnits: 16 });
    // Eventually consistent reads cost half a unit.
    expect(unitsFromCalls({ calls: { 'dynamodb.GetItem': 8, 'dynamodb.Query': 8 }, eventualReads: 6 })).toEqual({ writeUnits: 0, readUnits: 13 });
  });

  it('counts 2 write units per transaction item and prices S3 deletes as free', () => {
    // 3 transactions of 100 items (99 deletes + the lease fence) and 2 UpdateItems: 600 + 2 units.
    expect(unitsFromCalls({ calls: { 'dynamodb.TransactWriteItems': 3, 'dynamodb.UpdateItem': 2, 'dynamodb.Query': 21 }, transactWriteItems: 300 })).toEqual({ writeUnits: 602, readUnits: 21 });
    const compaction: RequestUsage = { s3Puts: 1, s3Gets: 1000, s3Deletes: 2, writeUnits: 602, readUnits: 21, lambdaInvocations: 2, lambdaMs: 999.1, lambdaMemoryMb: 1024 };
    const cost = costPerRequest(compaction, prices);
    // 1 PUT 5e-6 + 1000 GETs 4e-4 + deletes 0; 602 WRU 3.7625e-4; 21 RRU 2.625e-6;
    // 2 requests 4e-7; 2 × 1.000 s × 1 GB × 0.0000133334 = 2.66668e-5.
    expect(cost.s3Requests).toBeCloseTo(4.05e-4, 12);
    expect(cost.dynamodbWrites).toBeCloseTo(3.7625e-4, 12);
    expect(cost.lambdaDuration).toBeCloseTo(2.66668e-5, 12);
    expect(costPerRequest({ ...compaction, s3Deletes: 0 }, prices).total).toBeCloseTo(cost.total, 15);
  });

  it('prices an hourly sweep per month and per partition (hand-computed)', () => {
    const sweep: RequestUsage = { s3Puts: 0, s3Gets: 0, writeUnits: 120, readUnits: 200, lambdaInvocations: 1, lambdaMs: 400, lambdaMemoryMb: 1024 };
    // Per sweep: 120 × 0.625e-6 = 7.5e-5; 200 × 0.125e-6 = 2.5e-5; 2e-7; 0.4 × 0.0000133334 = 5.33336e-6.
    // Sum 1.0553336e-4, × 730 sweeps = 0.0770393528; over 40 partitions 0.00192598382.
    const { perMonth, perPartitionMonth } = monthlyCost(sweep, 730, 40, prices);
    expect(perMonth.total).toBeCloseTo(0.0770393528, 9);
    expect(perMonth.dynamodbWrites).toBeCloseTo(0.05475, 9);
    expect(perPartitionMonth).toBeCloseTo(0.00192598382, 10);
    expect(monthlyCost(sweep, 730, 0, prices).perPartitionMonth).toBeNaN();
  });
});
