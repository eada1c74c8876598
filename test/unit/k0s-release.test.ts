import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { assetName, assetUrl, normalizeTag, parseSums } from '../../src/lib/k0s/release.js';

describe('k0s release naming', () => {
  it('tags gain a v; garbage is a usage error', () => {
    assert.equal(normalizeTag('1.34.1+k0s.0'), 'v1.34.1+k0s.0');
    assert.equal(normalizeTag('v1.34.1+k0s.0'), 'v1.34.1+k0s.0');
    assert.throws(() => normalizeTag('latest!'), /is not a k0s version/);
  });

  it('asset URLs encode + as %2B, as GitHub does', () => {
    assert.equal(assetUrl('https://github.com/k0sproject/k0s/releases/download/', 'v1.34.1+k0s.0', assetName('v1.34.1+k0s.0', 'arm64')),
      'https://github.com/k0sproject/k0s/releases/download/v1.34.1%2Bk0s.0/k0s-v1.34.1%2Bk0s.0-arm64');
  });

  it('sha256sums.txt lines with and without the binary-mode star', () => {
    const a = 'a'.repeat(64);
    const b = 'B'.repeat(64);
    const sums = parseSums(`${a} *k0s-v1-amd64\n${b}  k0s-v1-arm64\nnot a line\n`);
    assert.equal(sums.get('k0s-v1-amd64'), a);
    assert.equal(sums.get('k0s-v1-arm64'), 'b'.repeat(64));
    assert.equal(sums.size, 2);
  });
});
