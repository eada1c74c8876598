#!/usr/bin/env bash
# Builds an Alpine-like alpine-rpi tarball (shared/facts.md's layout, about 100 MB, mostly
# incompressible) for tests and the benchmark, and caches it: a second call costs nothing.
#   scripts/make-alpine-tarball.sh [OUT]    (default /var/cache/pi-prep-test/alpine-rpi-3.21.2-aarch64.tar.gz)
# Prints the tarball's path. A OUT.sha256 beside it has Alpine's "<hex>  <file>" form.
set -euo pipefail
VERSION=3.21.2
OUT=${1:-/var/cache/pi-prep-test/alpine-rpi-$VERSION-aarch64.tar.gz}
if [ -s "$OUT" ] && [ -s "$OUT.sha256" ]; then echo "$OUT"; exit 0; fi
mkdir -p "$(dirname "$OUT")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r=$work/root
mkdir -p "$r/overlays" "$r/boot" "$r/apks/aarch64"
rand() { head -c "$2" /dev/urandom >"$r/$1"; }

printf 'modules=loop,squashfs,sd-mod,usb-storage quiet console=tty1\n' >"$r/cmdline.txt"
cat >"$r/config.txt" <<'CFG'
# do not modify this file as it will be overwritten on upgrade.
# create and/or modify usercfg.txt instead.
# https://www.raspberrypi.com/documentation/computers/config_txt.html
[pi4]
enable_gic=1
kernel=boot/vmlinuz-rpi
initramfs boot/initramfs-rpi
[pi5]
kernel=boot/vmlinuz-rpi
initramfs boot/initramfs-rpi
[all]
arm_64bit=1
include usercfg.txt
CFG
printf '%s\n' "$VERSION" >"$r/.alpine-release"
# Firmware and device trees.
rand bootcode.bin 52456
for f in start.elf start4.elf start4x.elf start_cd.elf start4cd.elf start4db.elf; do rand "$f" 2300000; done
for f in fixup.dat fixup4.dat fixup4x.dat fixup_cd.dat fixup4cd.dat fixup4db.dat; do rand "$f" 7300; done
for b in bcm2710-rpi-3-b bcm2710-rpi-3-b-plus bcm2710-rpi-zero-2-w bcm2711-rpi-4-b bcm2711-rpi-400 bcm2711-rpi-cm4 bcm2712-rpi-5-b bcm2712-rpi-500 bcm2712-rpi-cm5-cm5io; do
  rand "$b.dtb" 56000
done
for i in $(seq 1 180); do rand "overlays/ovl-$i.dtbo" $((1000 + i * 37)); done
printf 'Raspberry Pi overlays: see https://github.com/raspberrypi/linux\n' >"$r/overlays/README"
# Kernel, initramfs, modules.
rand boot/vmlinuz-rpi 24000000
rand boot/initramfs-rpi 9000000
rand boot/modloop-rpi 38000000
rand boot/System.map-rpi 4000000
printf 'CONFIG_CGROUPS=y\nCONFIG_MEMCG=y\nCONFIG_CFS_BANDWIDTH=y\nCONFIG_EXT4_FS=y\n' >"$r/boot/config-rpi"
# The boot repository: the base set only.
for p in alpine-base-$VERSION-r0 busybox-1.37.0-r12 chrony-4.6.1-r1 dhcpcd-10.1.0-r0 doas-6.8.2-r8 e2fsprogs-1.47.1-r1 \
  network-extras-1.2-r0 openssl-3.3.3-r0 openssh-9.9_p2-r0 tzdata-2025a-r0 wget-1.25.0-r0 musl-1.2.5-r9 \
  openrc-0.55.1-r2 alpine-conf-3.19.2-r0 apk-tools-2.14.6-r3 libcrypto3-3.3.3-r0 libssl3-3.3.3-r0 zlib-1.3.1-r2; do
  rand "apks/aarch64/$p.apk" 1100000
done
rand apks/aarch64/APKINDEX.tar.gz 60000
: >"$r/apks/.boot_repository"

tmp="$OUT.tmp.$$"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1735689600 -C "$r" -cf - . | gzip -1 >"$tmp"
mv "$tmp" "$OUT"
(cd "$(dirname "$OUT")" && sha256sum "$(basename "$OUT")" >"$OUT.sha256.tmp" && mv "$OUT.sha256.tmp" "$OUT.sha256")
echo "$OUT"
