import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { decodeJoinToken, encodeJoinToken, readJoinArg, readLimited, MAX_TOKEN_BYTES } from '../../src/lib/k0s/token.js';
import { UsageError } from '../../src/core/errors.js';

const hostArb = fc.oneof(fc.ipV4(), fc.domain());
const secretArb = fc.tuple(fc.stringMatching(/^[a-z0-9]{6}$/), fc.stringMatching(/^[a-z0-9]{16}$/)).map(([a, b]) => `${a}.${b}`);

describe('join token decoding', () => {
  it('round-trips any worker token: server and user come back, raw is the base64', async () => {
    await fc.assert(
      fc.asyncProperty(hostArb, fc.integer({ min: 1, max: 65535 }), secretArb, async (host, port, secret) => {
        const server = `https://${host}:${port}`;
        const raw = await encodeJoinToken({ server, user: 'kubelet-bootstrap', token: secret });
        // Tokens arrive wrapped, with trailing newlines: whitespace is not part of the token.
        const wrapped = raw.replace(/(.{76})/g, '$1\n') + '\n';
        const t = decodeJoinToken(wrapped);
        assert.equal(t.raw, raw);
        assert.equal(t.user, 'kubelet-bootstrap');
        assert.equal(new URL(t.server).port || '443', String(port === 443 ? 443 : port));
      }),
      { numRuns: 200 },
    );
  });

  it('rejects every other input with a UsageError (never another error)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.base64String(), fc.uint8Array().map((b) => Buffer.from(b).toString('base64'))), (s) => {
        try {
          decodeJoinToken(s);
        } catch (err) {
          assert.ok(err instanceof UsageError, `${(err as Error).name}: ${(err as Error).message}`);
          assert.ok(!(err as Error).message.includes('\n'));
          return;
        }
        assert.fail(`accepted ${JSON.stringify(s)}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses a controller token, naming the fix', async () => {
    const raw = await encodeJoinToken({ server: 'https://10.0.0.1:6443', user: 'controller-bootstrap', token: 'abcdef.0123456789abcdef' });
    assert.throws(() => decodeJoinToken(raw), /controller token, not a worker token: create one on the controller with `k0s token create --role worker`/);
  });

  it('refuses gzip that holds no kubeconfig, and non-https servers', async () => {
    assert.throws(() => decodeJoinToken(gzipSync('just: [text').toString('base64')), /holds no kubeconfig/);
    assert.throws(() => decodeJoinToken(gzipSync('a: 1\n').toString('base64')), /with a server and a user/);
    const http = await encodeJoinToken({ server: 'http://10.0.0.1:6443', user: 'kubelet-bootstrap', token: 'abcdef.0123456789abcdef' });
    assert.throws(() => decodeJoinToken(http), /is not https/);
  });

  it('reads @FILE and - (stdin); empty and missing files are usage errors', async () => {
    const raw = await encodeJoinToken({ server: 'https://127.0.0.1:6443', user: 'kubelet-bootstrap', token: 'abcdef.0123456789abcdef' });
    assert.equal((await readJoinArg('-', async () => raw + '\n')).raw, raw);
    await assert.rejects(readJoinArg('@/nonexistent/token'), /cannot read the join token file \/nonexistent\/token/);
    await assert.rejects(readJoinArg('-', async () => '   \n'), /join token is empty/);
  });

  it('stops reading an endless stdin or file at a token-sized limit, with one line', async () => {
    let pulled = 0;
    // `yes | pi-prep linux --join -`: a stream that never ends.
    const endless = () => new Readable({ read() { pulled++; this.push(Buffer.alloc(16 * 1024, 'y')); } });
    await assert.rejects(readLimited(endless(), 'stdin', 'pipe in the output of `k0s token create --role worker`'), (err: Error) => {
      assert.ok(err instanceof UsageError);
      assert.equal(err.message, `stdin holds more than ${MAX_TOKEN_BYTES} bytes, which is not a join token: pipe in the output of \`k0s token create --role worker\``);
      return true;
    });
    assert.ok(pulled * 16 * 1024 <= MAX_TOKEN_BYTES + 64 * 1024, `read ${pulled} chunks`);
    await assert.rejects(readJoinArg('@/dev/zero'), /^UsageError: \/dev\/zero holds more than \d+ bytes, which is not a join token/);
  });

  it('refuses a server URL holding control characters (terminal escapes) instead of printing it', async () => {
    // YAML double quotes turn \\e into ESC: the kubeconfig inside a token can carry any byte.
    const kubeconfig = 'clusters:\n- cluster:\n    server: "https://10.0.0.1:6443/\\e[2J\\e]0;owned\\a"\nusers:\n- name: kubelet-bootstrap\n  user:\n    token: abcdef.0123456789abcdef\n';
    const raw = gzipSync(kubeconfig).toString('base64');
    assert.throws(() => decodeJoinToken(raw), (err: Error) => {
      assert.ok(err instanceof UsageError);
      assert.doesNotMatch(err.message, /[\u0000-\u001f\u007f]/);
      assert.match(err.message, /server holds control characters/);
      return true;
    });
  });
});
