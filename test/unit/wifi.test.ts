import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { wpaPsk, wpaSupplicantConf } from '../../src/lib/alpine/apkovl.js';

describe('Wi-Fi on the card', () => {
  it('stores the derived PSK, not the passphrase (IEEE 802.11i test vectors)', () => {
    assert.equal(wpaPsk('password', 'IEEE'), 'f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e');
    assert.equal(wpaPsk('ThisIsAPassword', 'ThisIsASSID'), '0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af');
  });

  it('writes the SSID as hex, so `"`, `\\` and non-ASCII reach wpa_supplicant as the same bytes', () => {
    const conf = wpaSupplicantConf({ ssid: 'my"net\\ café', psk: 'password', country: 'DE' });
    assert.match(conf, /^country=DE\nnetwork=\{\n\tssid=([0-9a-f]+)\n\tpsk=[0-9a-f]{64}\n\}\n$/);
    const hex = /ssid=([0-9a-f]+)/.exec(conf)![1]!;
    assert.equal(Buffer.from(hex, 'hex').toString('utf8'), 'my"net\\ café');
  });
});
