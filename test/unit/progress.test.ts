import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { progressReporter } from '../../src/lib/disk/progress.js';

describe('progress lines', () => {
  it('no line at the first chunk, no ETA before a second of data, then a sane one', (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const lines: string[] = [];
    const MiB = 1024 * 1024;
    const report = progressReporter('download', 100 * MiB, (l) => lines.push(l));
    report(16); // the first chunk, a millisecond in: its "rate" would promise an ETA of days
    t.mock.timers.tick(1);
    report(16);
    assert.deepEqual(lines, []);
    t.mock.timers.tick(599);
    report(5 * MiB);
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, /ETA/);
    t.mock.timers.tick(1400); // 2 s in, 10 MiB done: 5 MiB/s, 90 MiB to go
    report(5 * MiB - 32);
    assert.equal(lines.at(-1), 'download: 10M of 100M (10%), ETA 18s');
    report(90 * MiB, true);
    assert.match(lines.at(-1)!, /^download: 100M in 2\.0s$/);
  });
});
