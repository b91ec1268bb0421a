import { describe, expect, it } from 'vitest';
import { runEndingAt, type IndexEntry } from '../../lib/log/sequencer.ts';

const entry = (base: number, count: number): IndexEntry => ({ kind: 'gap', base, count, token: 't', committedAt: 0 });
const bases = (entries: IndexEntry[]) => entries.map((e) => e.base);

describe('runEndingAt', () => {
  it('keeps an unbroken run that ends at the high watermark', () => {
    expect(bases(runEndingAt([entry(0, 2), entry(2, 1), entry(3, 4)], 7))).toEqual([0, 2, 3]);
  });
  it('stops at a missing batch, so nothing behind a hole is handed out', () => {
    expect(bases(runEndingAt([entry(0, 1), entry(2, 1)], 3))).toEqual([2]);
  });
  it('ignores entries at or above the high watermark and needs the run to reach it exactly', () => {
    expect(bases(runEndingAt([entry(0, 1), entry(1, 1), entry(5, 1)], 2))).toEqual([0, 1]);
    expect(runEndingAt([entry(0, 1), entry(1, 1)], 3)).toEqual([]);
    expect(runEndingAt([], 3)).toEqual([]);
  });
});
