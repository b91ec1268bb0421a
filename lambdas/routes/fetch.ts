// Fetch: read committed records of one partition from an offset, optionally long-polling.
import { Hono } from 'hono';
import { InvalidRequestError } from '../../lib/errors.ts';
import { recordJson, responseBudget } from '../http/encoding.ts';
import { fetchQuery, offsetsQuery, partitionParam } from '../http/schemas.ts';
import { parseWith } from '../http/request.ts';
import type { Services } from '../http/services.ts';

export function fetchRoutes({ fetcher }: Pick<Services, 'fetcher'>): Hono {
  const app = new Hono();

  app.get('/v1/topics/:topic/partitions/:partition/records', async (c) => {
    const partition = parseWith(partitionParam, c.req.param('partition'), 'path parameter partition');
    // c.req.query() keeps only the first of repeated parameters: refuse them rather than guess.
    const repeated = Object.entries(c.req.queries()).find(([, values]) => values.length > 1);
    if (repeated) throw new InvalidRequestError('INVALID_REQUEST', `query parameter ${repeated[0]} is given ${repeated[1].length} times; give it once`);
    const query = parseWith(fetchQuery, c.req.query(), 'query');
    const encoding = query.encoding ?? 'utf8';
    const result = await fetcher.fetch({
      topic: c.req.param('topic'),
      partition,
      offset: query.offset,
      maxRecords: query.maxRecords ?? 500,
      maxBytes: query.maxBytes ?? 1024 * 1024,
      waitMs: query.waitMs ?? 0,
      isolation: query.isolation,
      budget: responseBudget(encoding, recordJson),
    });
    return c.json({
      records: result.records.map((r) => recordJson(r, encoding)),
      nextOffset: result.nextOffset,
      highWatermark: result.highWatermark,
      lastStableOffset: result.lastStableOffset,
      logStartOffset: result.logStartOffset,
      gaps: result.gaps,
      abortedTransactions: result.abortedTransactions,
    });
  });

  app.get('/v1/topics/:topic/partitions/:partition/offsets', async (c) => {
    const partition = parseWith(partitionParam, c.req.param('partition'), 'path parameter partition');
    const { timestamp } = parseWith(offsetsQuery, c.req.query(), 'query');
    return c.json(await fetcher.listOffset(c.req.param('topic'), partition, timestamp));
  });

  return app;
}
