import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderMarkdown, summaryLine } from '../../src/run/plan.js';
import { quoteArgv } from '../../src/core/quote.js';
import { textDiff } from '../../src/run/recording-target.js';
import type { RunReport } from '../../src/run/report.js';

describe('plan rendering', () => {
  it('checklist: done with evidence, would-run with exact argv and edits', () => {
    const r: RunReport = {
      recipe: 'linux', target: 'this machine', dryRun: true, ok: true, notes: ['a note'],
      tasks: [
        { id: 'a', title: 'A', status: 'done', why: 'already there', actions: [] },
        { id: 'b', title: 'B', status: 'would-run', why: 'missing', actions: [
          { kind: 'run', argv: ['k0s', 'install', 'worker', '--labels', 'a=b c'] },
          { kind: 'write', path: '/boot/firmware/cmdline.txt', bytes: 40, backup: true, diff: ['- console=tty1', '+ console=tty1 cgroup_enable=memory'] },
          { kind: 'mkdir', path: '/etc/k0s', mode: 0o700 },
        ] },
      ],
    };
    assert.equal(renderMarkdown(r), [
      '# pi-prep linux (dry run) on this machine',
      '',
      '- [x] A (done: already there)',
      '- [ ] B (missing)',
      "  - run `k0s install worker --labels 'a=b c'`",
      '  - write /boot/firmware/cmdline.txt (40 bytes, backup kept)',
      '    - console=tty1',
      '    + console=tty1 cgroup_enable=memory',
      '  - create directory /etc/k0s, mode 0700',
      '',
      'Notes:',
      '- a note',
      '',
      '1 done, 1 would run. Nothing was changed.',
      '',
    ].join('\n'));
  });

  it('a blocked requirement makes the plan infeasible', () => {
    const r: RunReport = { recipe: 'x', target: 't', dryRun: true, ok: false, notes: [], tasks: [{ id: 'p', title: 'P', status: 'blocked', why: 'no', actions: [] }] };
    assert.match(summaryLine(r), /Not feasible: 1 requirement blocked/);
  });

  it('quoting is POSIX-safe for the nasty cases', () => {
    assert.equal(quoteArgv(['a', '', "it's", '$(rm -rf /)', 'x y']), `a '' 'it'\\''s' '$(rm -rf /)' 'x y'`);
  });

  it('text diffs show removed then added lines', () => {
    assert.deepEqual(textDiff(Buffer.from('a\nb\n'), 'a\nc\n'), ['- b', '+ c']);
    assert.deepEqual(textDiff(undefined, 'new\n'), ['+ new']);
  });
});
