import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeJoinToken, encodeJoinToken } from '../../src/lib/k0s/token.js';
import { clearSecrets, redact, REDACTED } from '../../src/core/redact.js';
import { renderMarkdown } from '../../src/run/plan.js';
import { renderEnvelope } from '../../src/core/json-output.js';
import { runRecipe } from '../../src/run/runner.js';
import { LocalTarget } from '../../src/targets/local-target.js';
import type { RunReport } from '../../src/run/report.js';

const secretArb = fc.tuple(fc.stringMatching(/^[a-z0-9]{6}$/), fc.stringMatching(/^[a-z0-9]{16}$/)).map(([a, b]) => `${a}.${b}`);

describe('redaction', () => {
  it('no rendered output ever carries a decoded token or its bootstrap secret', async () => {
    await fc.assert(
      fc.asyncProperty(secretArb, fc.string(), fc.string(), async (secret, before, after) => {
        const raw = await encodeJoinToken({ server: 'https://127.0.0.1:6443', user: 'kubelet-bootstrap', token: secret });
        decodeJoinToken(raw);
        // A careless task could put the token anywhere: titles, reasons, argv, diffs, notes, errors.
        const leak = `${before}${raw}${after}`;
        const report: RunReport = {
          recipe: 'linux', target: 'this machine', dryRun: true, ok: true,
          tasks: [{
            id: 't', title: `title ${leak}`, status: 'would-run', why: `why ${secret}`,
            actions: [
              { kind: 'run', argv: ['k0s', 'install', 'worker', '--token', raw] },
              { kind: 'write', path: '/etc/x', bytes: 3, diff: [`+ ${leak}`] },
              { kind: 'host', text: `echo ${secret}` },
            ],
          }],
          notes: [leak],
        };
        for (const out of [renderMarkdown(report), renderEnvelope({ kind: 'linux', version: 1, ok: true, data: report })]) {
          assert.ok(!out.includes(raw), 'raw token leaked');
          assert.ok(!out.includes(secret), 'bootstrap token leaked');
          assert.ok(!out.includes(secret.split('.')[1]!), 'bootstrap secret leaked');
        }
        assert.ok(renderMarkdown(report).includes(REDACTED));
      }),
      { numRuns: 300 },
    );
  });

  it('a failing task whose error carries the token fails with the token redacted', async () => {
    const raw = await encodeJoinToken({ server: 'https://127.0.0.1:6443', user: 'kubelet-bootstrap', token: 'qwerty.0123456789qwerty' });
    decodeJoinToken(raw);
    const recipe = {
      name: 't', title: 't', notes: [],
      tasks: [{ id: 'x', title: 'x', check: async () => ({ done: false, why: 'to do' }), apply: async () => { throw new Error(`k0s said: bad token ${raw}`); } }],
    };
    await assert.rejects(runRecipe(recipe, new LocalTarget(), { dryRun: false }), (err: Error) => {
      assert.ok(!err.message.includes(raw) && !err.message.includes('0123456789qwerty'), err.message);
      assert.match(err.message, /bad token \[redacted\]/);
      return true;
    });
  });

  it('leaves text without secrets alone', () => {
    clearSecrets();
    fc.assert(fc.property(fc.string(), (s) => assert.equal(redact(s), s)));
    assert.equal(redact('k0s install worker --token-file /etc/k0s/k0stoken'), 'k0s install worker --token-file /etc/k0s/k0stoken');
  });
});
