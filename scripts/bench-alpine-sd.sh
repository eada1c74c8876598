#!/usr/bin/env bash
# pi-prep alpine-sd (verification included) against the same card built by hand with the raw
# tools (sfdisk + mkfs.vfat + tar + mcopy + mkfs.ext4, no mounts), on the ~100 MB test tarball,
# both onto a 2 GiB image file. Rounds alternate; the medians are compared. Goal: ratio <= 1.10.
#   scripts/bench-alpine-sd.sh [ROUNDS]     (needs a built tree: npx tsc -p .)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
TARBALL=$(bash scripts/make-alpine-tarball.sh)
work=$(mktemp -d /tmp/pi-prep-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/key" >/dev/null
export MTOOLS_SKIP_CHECK=1

# The hand-made overlay: prepared once, outside the timing (a person would have it ready too).
mkdir -p "$work/ovl/etc" "$work/ovl/root/.ssh"
echo pi1 >"$work/ovl/etc/hostname"
cp "$work/key.pub" "$work/ovl/root/.ssh/authorized_keys"

raw() {
  local img=$work/raw.img st=$work/raw-st data=$work/raw-data
  rm -rf "$img" "$st" "$data"; mkdir -p "$st" "$data"
  truncate -s 2G "$img"
  printf 'label: dos\nstart=8192, size=524288, type=c, bootable\nstart=532480, size=3653632, type=83\n' | sfdisk -q "$img"
  mkfs.vfat -F 32 -s 4 -n ALPINE --offset 8192 "$img" 262144 >/dev/null
  tar -xzf "$TARBALL" -C "$st"
  sed -i '1s/$/ cgroup_enable=cpuset cgroup_enable=memory cgroup_memory=1/' "$st/cmdline.txt"
  printf 'arm_64bit=1\n' >"$st/usercfg.txt"
  tar -czf "$st/pi1.apkovl.tar.gz" -C "$work/ovl" .
  mcopy -s -Q -i "$img@@4194304" "$st"/* "$st"/.alpine-release ::
  mkfs.ext4 -F -q -L k0s-data -E offset=272629760,nodiscard -d "$data" "$img" 1826816k
  sync "$img"
}

piprep() {
  rm -f "$work/pp.img"
  node dist/src/cli/main.js alpine-sd "$work/pp.img" --tarball "$TARBALL" --ssh-key "$work/key.pub" --hostname pi1 >/dev/null
}

now() { date +%s.%N; }
raws=(); pps=()
piprep; raw  # warm the page cache and node's compile cache
for i in $(seq 1 "$ROUNDS"); do
  t0=$(now); raw; t1=$(now); piprep; t2=$(now)
  raws+=("$(echo "$t1 - $t0" | bc)"); pps+=("$(echo "$t2 - $t1" | bc)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
r=$(median "${raws[@]}"); p=$(median "${pps[@]}")
echo "raw tools: ${raws[*]} s (median $r s)"
echo "pi-prep:   ${pps[*]} s (median $p s)"
echo "ratio (pi-prep / raw tools, medians): $(echo "scale=3; $p / $r" | bc)"
