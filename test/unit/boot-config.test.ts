import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kernelLine, removeKernelBlock, selectKernel, selectsKernel } from '../../src/lib/boot-config.js';

const CONFIG = '# comment\ndtparam=audio=on\nauto_initramfs=1\ndtoverlay=vc4-kms-v3d\ndtoverlay=dwc2\ninitramfs initramfs8 followkernel\n[pi4]\nkernel=custom.img\n[cm5]\ndtoverlay=dwc2,dr_mode=host\n[all]\n';

describe('config.txt line edits (not ini)', () => {
  it('adds a marked block under [all] at the end; every other line kept (repeated keys, lines without =)', () => {
    const out = selectKernel(CONFIG, 'kernel8-k0s.img');
    assert.equal(out, CONFIG.replace('initramfs initramfs8', '#pi-prep# initramfs initramfs8')
      + '# pi-prep: k0s kernel (undo: pi-prep rpios --rollback-kernel)\n[all]\nkernel=kernel8-k0s.img\nauto_initramfs=0\n# pi-prep: end\n');
    assert.ok(selectsKernel(out, 'kernel8-k0s.img'));
    assert.ok(!selectsKernel(CONFIG, 'kernel8-k0s.img'));
    assert.equal(kernelLine(out), 'kernel8-k0s.img');
  });
  it('is idempotent and removable to the original bytes', () => {
    const once = selectKernel(CONFIG, 'kernel_2712-k0s.img');
    assert.equal(selectKernel(once, 'kernel_2712-k0s.img'), once);
    assert.equal(removeKernelBlock(once), CONFIG);
  });
  it('keeps CRLF line ends', () => {
    const crlf = CONFIG.replace(/\n/g, '\r\n');
    assert.equal(removeKernelBlock(selectKernel(crlf, 'k.img')), crlf);
    assert.ok(!/[^\r]\n/.test(selectKernel(crlf, 'k.img')));
  });
  it('kernelLine ignores conditional sections', () => {
    assert.equal(kernelLine('[pi4]\nkernel=a.img\n[all]\n'), undefined);
    assert.equal(kernelLine('kernel=b.img\n[pi5]\nkernel=c.img\n'), 'b.img');
  });

  it('removing the block never takes the user\'s lines after it, whatever happened to the end marker', () => {
    const block = selectKernel(CONFIG, 'kernel8-k0s.img');
    const user = 'dtparam=spi=on\ngpu_mem=16\n';
    // An editor added a trailing space to the end marker; the user added lines after the block.
    assert.equal(removeKernelBlock(block.replace('# pi-prep: end\n', '# pi-prep: end \n') + user), CONFIG + user);
    // The end marker deleted altogether: only the block's own lines go.
    assert.equal(removeKernelBlock(block.replace('# pi-prep: end\n', '') + user), CONFIG + user);
  });
});
