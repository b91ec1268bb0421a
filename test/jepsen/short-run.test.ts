// The short fault-injection run (`npm run jepsen`) is part of the test suite: its own stack,
// killed and restarted, faults in AWS calls and clients, a writer with an offset clock, compaction
// and retention running, idempotent producers and transformers in transactions; it must check
// every anomaly class and find none.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { ANOMALY_CLASSES } from '../../jepsen/checker.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

// Bounded by the run itself (its workload, hole timeout and drain deadlines); the timeout is only a backstop.
it('the short run reports zero anomalies and exits 0', async () => {
  const run = spawn(process.execPath, ['--import', 'tsx', 'jepsen/run.ts', '--short'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  run.stdout.on('data', (d: Buffer) => (output += d.toString()));
  run.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const status = await new Promise<number | null>((resolve) => run.once('exit', (code) => resolve(code)));
  expect(status, output).toBe(0);
  for (const cls of Object.keys(ANOMALY_CLASSES)) expect(output).toMatch(new RegExp(`^  ${cls} +0$`, 'm'));
  for (const fault of ['kill', 'restart', 'skew-on', 'delay', 'lose', 'throttle', 'client-timeout', 'duplicate-poll']) expect(output).toMatch(new RegExp(`^  ${fault} +[1-9]`, 'm'));
  // Compaction and retention really ran during the run, as the topic describes saw them.
  for (const happened of ['segments rolled', 'log start moves']) expect(output).toMatch(new RegExp(`^  ${happened} +[1-9]`, 'm'));
  // The transformers committed transactions (every input consumed), and idempotent requests were retried.
  expect(output).toMatch(/^  transactions committed \/ aborted: [1-9]/m);
  expect(output).toMatch(/^  idempotent requests retried after an unknown outcome: [1-9]/m);
  expect(output).toMatch(/^no anomalies$/m);
}, 600_000);
