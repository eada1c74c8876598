#!/usr/bin/env bash
# A local stand-in for github.com/raspberrypi/linux: a git repository made from Debian's
# linux-source, with the kernel on a branch named like the Pi's (rpi-6.1.y). Cached, so repeated
# test runs only pay for it once. Prints the repository path.
#   usage: scripts/make-kernel-repo.sh [CACHE_DIR]   (default /var/cache/pi-prep-test)
set -euo pipefail
CACHE=${1:-/var/cache/pi-prep-test}
TARBALL=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n1)
[ -n "$TARBALL" ] || { echo "no /usr/src/linux-source-*.tar.xz: apt-get install linux-source" >&2; exit 1; }
NAME=$(basename "$TARBALL" .tar.xz)          # linux-source-6.1
SERIES=${NAME#linux-source-}                 # 6.1
SRC="$CACHE/$NAME"                           # extracted tree (Kconfig tests use it read-only)
REPO="$CACHE/$NAME.git-repo"                 # the "raspberrypi/linux" stand-in
mkdir -p "$CACHE"
exec 9>"$CACHE/.$NAME.lock"
flock 9

if [ ! -f "$SRC/.pi-prep-extracted" ]; then
  rm -rf "$SRC.tmp" && mkdir -p "$SRC.tmp"
  tar -xJf "$TARBALL" -C "$SRC.tmp" --strip-components=1
  rm -rf "$SRC" && mv "$SRC.tmp" "$SRC"
  touch "$SRC/.pi-prep-extracted"
fi

if [ ! -f "$REPO/.pi-prep-ready" ]; then
  rm -rf "$REPO.tmp" && mkdir -p "$REPO.tmp"
  cp -a "$SRC/." "$REPO.tmp/"
  rm -f "$REPO.tmp/.pi-prep-extracted"
  git -C "$REPO.tmp" init -q -b "rpi-$SERIES.y"
  git -C "$REPO.tmp" -c user.name=pi-prep-test -c user.email=test@127.0.0.1 add -A -f .
  git -C "$REPO.tmp" -c user.name=pi-prep-test -c user.email=test@127.0.0.1 commit -q -m "Debian $NAME as rpi-$SERIES.y"
  git -C "$REPO.tmp" branch "rpi-9.9.y"      # another branch: the recipe must pick the matching one
  rm -rf "$REPO" && mv "$REPO.tmp" "$REPO"
  touch "$REPO/.git/.pi-prep-ready" "$REPO/.pi-prep-ready"
fi
echo "$REPO"
