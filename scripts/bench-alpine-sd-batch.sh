#!/usr/bin/env bash
# pi-prep alpine-sd in batch mode: one image, then ten images in one run (`--count 10`,
# `--hostname 'pi-{n}'`), each verified as a single card is, onto 2 GiB image files, on the ~100 MB
# test tarball. Rounds alternate; the medians are compared. Goal (issue 10): ten <= 3x one.
#   scripts/bench-alpine-sd-batch.sh [ROUNDS]     (needs a built tree: npx tsc -p .)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
TARBALL=$(bash scripts/make-alpine-tarball.sh)
work=$(mktemp -d /tmp/pi-prep-bench-batch-XXXXXX)
trap 'rm -rf "$work"' EXIT
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/key" >/dev/null

# Fresh image files every time: a re-run onto finished cards would (rightly) leave them alone.
build() {
  local n=$1
  rm -rf "$work/out"; mkdir "$work/out"
  node dist/src/cli/main.js alpine-sd "$work/out/pi-{n}.img" --count "$n" --hostname 'pi-{n}' \
    --tarball "$TARBALL" --ssh-key "$work/key.pub" --quiet
}

now() { date +%s.%N; }
ones=(); tens=()
build 1; build 2  # warm the page cache and node's compile cache
for i in $(seq 1 "$ROUNDS"); do
  t0=$(now); build 1; t1=$(now); build 10; t2=$(now)
  ones+=("$(echo "$t1 - $t0" | bc)"); tens+=("$(echo "$t2 - $t1" | bc)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
o=$(median "${ones[@]}"); t=$(median "${tens[@]}")
echo "1 image:   ${ones[*]} s (median $o s)"
echo "10 images: ${tens[*]} s (median $t s)"
echo "ratio (10 images / 1 image, medians): $(echo "scale=3; $t / $o" | bc) (goal <= 3)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
