import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  costPerGiB, costPerRequest, kinesisOnDemandPerGiB, kinesisStreamMonthly, lambdaBilledMs, mskServerlessPerGiB, parsePrices,
  readUnitsForBytes, requestsPerGiB, unitsFromCalls, writeUnitsForItem, type RequestUsage,
} from '../../bench/cost-model.ts';

const prices = parsePrices(JSON.parse(readFileSync(new URL('../../bench/prices.json', import.meta.url), 'utf8')));

describe('bench cost model', () => {
  it('reads the dated price table', () => {
    expect(prices.asOf).toBe('2026-11-21');
    expect(() => parsePrices({ ...prices, s3: { ...prices.s3, putPer1000: -1 } })).toThrow(/s3.putPer1000/);
    expect(() => parsePrices({ ...prices, asOf: 'soon' })).toThrow(/asOf/);
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
    expect(unitsFromCalls({ 'dynamodb.UpdateItem': 9, 'dynamodb.PutItem': 8, 'dynamodb.GetItem': 8, 'dynamodb.Query': 8, 's3.PutObject': 8 })).toEqual({ writeUnits: 17, readUnits: 16 });
  });
});
