/**
 * A Raspberry Pi OS boot of a Pi root (rpi-fixture.ts), modelled from the firmware and kernel rules
 * (raspberrypi/documentation config_txt and kernel-command-line-config; raspberrypi/linux):
 * - the firmware reads config.txt: `kernel=` in the sections that apply to the board ([all], [pi4],
 *   [pi5]; others are skipped) picks the image, the last one winning; without one, the board's
 *   default (kernel8.img, or kernel_2712.img on a Pi 5);
 * - the kernel is the one in that image: its release is its own banner ("Linux version R"), so a
 *   rebuilt kernel brings its own config (/boot/config-R or /lib/modules/R/config);
 * - /proc/cmdline is the firmware's parameters and then cmdline.txt; the memory controller is on
 *   when the kernel has CONFIG_MEMCG and cgroup_enable=memory comes after any cgroup_disable=memory;
 * - RAM is new: /run is empty, a new boot id; systemd starts the units enabled in
 *   multi-user.target.wants (their ExecStart run in the chroot; one that exits 0 is "running").
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { BOARDS } from '../rpi-fixture.js';

const FIRMWARE_ARGS = 'coherent_pool=1M 8250.nr_uarts=1 snd_bcm2835.enable_headphones=0 bcm2708_fb.fbwidth=0 bcm2708_fb.fbheight=0 smsc95xx.macaddr=DC:A6:32:00:00:01 vc_mem.mem_base=0x3ec00000 vc_mem.mem_size=0x40000000';
const WANTS = 'etc/systemd/system/multi-user.target.wants';

export interface RpiBoot {
  kernel: string;
  release: string;
  cmdline: string;
  controllers: string[];
  /** Units that started (their ExecStart exited 0) and those that failed. */
  started: string[];
  failed: string[];
}

/** The kernel image config.txt selects for this board. */
export function selectedKernel(configTxt: string, board: keyof typeof BOARDS): string {
  let applies = true;
  let kernel = board === 'pi5' ? 'kernel_2712.img' : 'kernel8.img';
  for (const raw of configTxt.split('\n')) {
    const line = raw.trim();
    const section = /^\[([^\]]+)\]$/.exec(line)?.[1];
    if (section) applies = section === 'all' || section === board;
    else if (applies && /^kernel=/.test(line)) kernel = line.slice('kernel='.length).trim();
  }
  return kernel;
}

/** The release a kernel image announces (its linux_banner); the fixture's stock images are placeholders. */
function releaseOf(image: Buffer, board: keyof typeof BOARDS): string {
  const raw = image[0] === 0x1f && image[1] === 0x8b ? gunzipSync(image) : image;
  return /Linux version (\S+)/.exec(raw.toString('latin1'))?.[1] ?? BOARDS[board].release;
}

export function bootRpiOs(root: string, board: keyof typeof BOARDS): RpiBoot {
  const p = (x: string) => join(root, x);
  const bootDir = existsSync(p('boot/firmware/config.txt')) ? 'boot/firmware' : 'boot';
  const kernel = selectedKernel(readFileSync(p(`${bootDir}/config.txt`), 'utf8'), board);
  if (!existsSync(p(`${bootDir}/${kernel}`))) throw new Error(`simulated firmware: ${kernel} not found on the boot partition: the Pi does not boot`);
  const release = releaseOf(readFileSync(p(`${bootDir}/${kernel}`)), board);
  const config = [`boot/config-${release}`, `lib/modules/${release}/config`].map(p).find(existsSync);
  if (!config) throw new Error(`simulated kernel ${release}: no config at /boot/config-${release} or /lib/modules/${release}/config`);
  const memcg = /^CONFIG_MEMCG=y$/m.test(readFileSync(config, 'utf8'));
  const cmdline = `${FIRMWARE_ARGS} ${readFileSync(p(`${bootDir}/cmdline.txt`), 'utf8').split('\n')[0]!.trim()}`;
  const params = cmdline.split(/\s+/);
  const memory = memcg && params.lastIndexOf('cgroup_enable=memory') > params.lastIndexOf('cgroup_disable=memory');
  const controllers = ['cpuset', 'cpu', 'io', ...(memory ? ['memory'] : []), 'pids'];

  rmSync(p('run'), { recursive: true, force: true });
  mkdirSync(p('run'), { recursive: true });
  const put = (x: string, data: string) => {
    mkdirSync(join(p(x), '..'), { recursive: true });
    writeFileSync(p(x), data);
  };
  put('proc/sys/kernel/osrelease', `${release}\n`);
  put('proc/cmdline', `${cmdline}\n`);
  put('proc/sys/kernel/random/boot_id', `${crypto.randomUUID()}\n`);
  put('sys/fs/cgroup/cgroup.controllers', controllers.join(' ') + '\n');

  const started: string[] = [];
  const failed: string[] = [];
  for (const unit of existsSync(p(WANTS)) ? readdirSync(p(WANTS)).sort() : []) {
    const file = [`${WANTS}/${unit}`, `etc/systemd/system/${unit}`, `lib/systemd/system/${unit}`].map(p).find(existsSync);
    const exec = file && /^ExecStart=(.+)$/m.exec(readFileSync(file, 'utf8'))?.[1];
    if (!exec) { failed.push(unit); continue; }
    const r = spawnSync('chroot', [root, '/bin/sh', '-c', exec], { encoding: 'utf8', env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } });
    const name = unit.replace(/\.service$/, '');
    if (r.status === 0) {
      mkdirSync(p('run/sim-daemon'), { recursive: true });
      writeFileSync(p(`run/sim-daemon/${name}`), '');
      started.push(name);
    } else failed.push(name);
  }
  return { kernel, release, cmdline, controllers, started, failed };
}

/** `systemctl` in a chroot: systemd does not act there ("Running in chroot, ignoring command"), and says so. */
export const SYSTEMCTL = `#!/bin/sh
{ printf '%s' "\${0##*/}"; for a in "$@"; do printf '\\t%s' "$a"; done; printf '\\n'; } >> /var/log/pi-prep-standins.log
echo "Running in chroot, ignoring command '$1'" >&2
exit 0
`;
