// The CLI as scripts use it: spawned as a process against the local app. Each spawn starts tsx, so
// one scenario runs through few of them.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './server.ts';

const BIN = fileURLToPath(new URL('../../client/bin/s3kq.js', import.meta.url));

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server?.close());

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...process.env, QUEUE_URL: server.url }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('s3kq', () => {
  it('creates a topic, produces a file, consumes it back identically, and shows the lag of a group that read part of it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 's3kq-'));
    const file = join(dir, 'lines.txt');
    const lines = Array.from({ length: 500 }, (_, i) => `line ${i}: ${'é✓'.repeat(i % 5)} \t tab and "quotes"`);
    await writeFile(file, `${lines.join('\n')}\n`);

    const created = await cli('topics', 'create', 'lines', '--partitions', '1');
    expect(created, created.stderr).toMatchObject({ code: 0 });
    expect(created.stdout).toContain('created topic lines');

    const produced = await cli('produce', 'lines', '--file', file);
    expect(produced, produced.stderr).toMatchObject({ code: 0 });
    expect(produced.stdout).toContain('produced 500 record(s)');

    const consumed = await cli('consume', 'lines', '--from-beginning');
    expect(consumed, consumed.stderr).toMatchObject({ code: 0 });
    expect(consumed.stdout).toBe(await readFile(file, 'utf8'));

    const partial = await cli('consume', 'lines', '--from-beginning', '--group', 'readers', '--count', '120');
    expect(partial, partial.stderr).toMatchObject({ code: 0 });
    expect(partial.stdout).toBe(`${lines.slice(0, 120).join('\n')}\n`);

    const described = await cli('groups', 'describe', 'readers');
    expect(described, described.stderr).toMatchObject({ code: 0 });
    expect(described.stdout).toMatch(/^TOPIC\s+PARTITION\s+COMMITTED\s+HIGH-WATERMARK\s+LAG$/m);
    expect(described.stdout).toMatch(/^lines\s+0\s+120\s+500\s+380$/m);
  });

  it('exits non-zero with the server code on errors', async () => {
    const unknown = await cli('--json', 'consume', 'no-such-topic', '--from-beginning');
    expect(unknown.code).toBe(3);
    expect(JSON.parse(unknown.stderr)).toMatchObject({ error: { code: 'UNKNOWN_TOPIC', status: 404 } });
    const usage = await cli('topics', 'create', 'x', '--partitions', 'many');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--partitions must be an integer');
  });
});
