#!/bin/sh
# The fault-injection loop (issue 11): the tests of faults, signals, locks, bounds and downloads,
# ROUNDS times each, while HOGS busy loops (`yes > /dev/null`) compete for the CPU. A flaky test
# shows up here as a count below ROUNDS; each failing run's TAP output is kept.
#
#   scripts/fault-loop.sh [ROUNDS=20] [HOGS=2]      (after `npm run build`; as root, like the tests)
#
# Everything runs under `nice -n ${NICE:-10}`, the hogs too, so that they load these tests and
# not other work on the machine. Exit 0 only when every run of every file passed.
set -u
ROUNDS=${1:-20}
HOGS=${2:-2}
NICE=${NICE:-10}
cd "$(dirname "$0")/.." || exit 2
[ -f dist/src/cli/main.js ] || { echo "fault-loop: run npm run build first" >&2; exit 2; }

FILES="
dist/test/unit/download.test.js
dist/test/unit/atomic-write.test.js
dist/test/unit/target-lock-race.test.js
dist/test/unit/target-write-swap.test.js
dist/test/unit/signal-handlers.test.js
dist/test/integration/signals.test.js
dist/test/integration/target-lock.test.js
dist/test/integration/command-timeout.test.js
dist/test/integration/card-recheck.test.js
"

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/pi-prep-fault-loop-XXXXXX")
HOG_PIDS=""
stop_hogs() {
  # Only the hogs this script started, by pid.
  [ -n "$HOG_PIDS" ] && kill $HOG_PIDS 2>/dev/null
  HOG_PIDS=""
}
trap 'stop_hogs; exit 130' INT
trap 'stop_hogs; exit 143' TERM
trap 'stop_hogs' EXIT
i=0
while [ "$i" -lt "$HOGS" ]; do
  nice -n "$NICE" yes > /dev/null &
  HOG_PIDS="$HOG_PIDS $!"
  i=$((i + 1))
done

start=$(date +%s)
for f in $FILES; do echo 0 > "$LOGS/$(basename "$f").pass"; done
round=1
while [ "$round" -le "$ROUNDS" ]; do
  for f in $FILES; do
    name=$(basename "$f")
    if nice -n "$NICE" node --test --test-concurrency=1 "$f" > "$LOGS/current.tap" 2>&1; then
      echo $(( $(cat "$LOGS/$name.pass") + 1 )) > "$LOGS/$name.pass"
    else
      mv "$LOGS/current.tap" "$LOGS/$name.round$round.fail.tap"
      echo "round $round: $name FAILED (output: $LOGS/$name.round$round.fail.tap)" >&2
    fi
  done
  echo "round $round/$ROUNDS done ($(( $(date +%s) - start )) s, load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  round=$((round + 1))
done
stop_hogs

failed=0
echo "fault loop: $ROUNDS rounds, $HOGS CPU hogs, $(( $(date +%s) - start )) s"
for f in $FILES; do
  name=$(basename "$f")
  n=$(cat "$LOGS/$name.pass")
  echo "  $name: $n/$ROUNDS passed"
  [ "$n" -eq "$ROUNDS" ] || failed=1
done
[ "$failed" -eq 0 ] && rm -rf "$LOGS" || echo "failing runs' output kept in $LOGS"
exit "$failed"
