import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { stripFleetFlags, tokenToStdin } from '../../src/fleet/fleet-command.js';
import { redact } from '../../src/core/redact.js';

describe('fleet argv', () => {
  it('a token given as text reaches each host on stdin, never in argv', () => {
    const secret = 'H4sIAAAAAAAAA-not-a-real-token';
    const r = tokenToStdin(['linux', '--join', secret, '--dry-run']);
    assert.deepEqual(r, { argv: ['linux', '--join', '-', '--dry-run'], token: secret });
    assert.deepEqual(tokenToStdin(['linux', `--join=${secret}`]).argv, ['linux', '--join', '-']);
    assert.equal(redact(`oops ${secret}`), 'oops [redacted]');
  });

  it('@FILE and - stay as they are', () => {
    assert.deepEqual(tokenToStdin(['linux', '--join', '@w.token']), { argv: ['linux', '--join', '@w.token'] });
    assert.deepEqual(tokenToStdin(['linux', '--join', '-']), { argv: ['linux', '--join', '-'] });
  });

  it('fleet flags are removed from what each host runs', () => {
    assert.deepEqual(stripFleetFlags(['--host', 'a', '--inventory=x.yaml', '--parallel', '2', '--dry-run']), ['--dry-run']);
  });
});
