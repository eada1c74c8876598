// Startup cost of the CLI against bare Node, in one run: `node -e 0` is the baseline.
// Usage: npm run bench:startup [-- RUNS]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const runs = Number(process.argv[2] ?? 30);
const cases: Record<string, string[]> = {
  'node -e 0': ['-e', '0'],
  'pi-prep --version': [cli, '--version'],
  'pi-prep --help': [cli, '--help'],
};

const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < runs + 3; i++) {
  // Interleaved, so drift in machine load hits every case alike; the first 3 rounds warm caches.
  for (const [name, args] of Object.entries(cases)) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: 'ignore' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${name} exited ${r.status}`);
    if (i >= 3) times[name]!.push(ms);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(times['node -e 0']!);
console.log(`runs: ${runs} each, median wall time`);
for (const name of Object.keys(cases)) {
  const m = median(times[name]!);
  console.log(`${name.padEnd(20)} ${m.toFixed(1).padStart(7)} ms  ${(m / base).toFixed(2)}x`);
}
