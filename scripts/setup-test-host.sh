#!/usr/bin/env bash
# Installs what the tests need on a Debian/Ubuntu machine (run as root). Idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  qemu-user-static binfmt-support busybox-static   # the arm64 "Pi in a chroot"
  fdisk dosfstools mtools e2fsprogs util-linux      # cards and images, through offsets
  openssh-server openssh-client sudo                # a real sshd on 127.0.0.1; sudo for the non-root SSH user
  git linux-source gcc-aarch64-linux-gnu libc6-dev-arm64-cross bc bison flex libssl-dev make kmod cpio xz-utils
)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# arm64 busybox for fixture roots: Debian's own arm64 package, unpacked (not installed).
BB_DIR=/var/cache/pi-prep-test/arm64
if [ ! -x "$BB_DIR/bin/busybox" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; apt-get update -qq; }
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq busybox-static:arm64 2>/dev/null && dpkg -x busybox-static_*_arm64.deb x)
  mkdir -p "$BB_DIR/bin"
  cp "$tmp/x/bin/busybox" "$BB_DIR/bin/busybox"
  rm -rf "$tmp"
fi

# Let the kernel run arm64 binaries through qemu (F flag: works inside chroots).
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
echo "test host ready: $(chroot_check=$(mktemp -d); mkdir -p "$chroot_check/bin"; cp "$BB_DIR/bin/busybox" "$chroot_check/bin/"; chroot "$chroot_check" /bin/busybox uname -m; rm -rf "$chroot_check")"
