#!/usr/bin/env bash
# Runs the README's quick start as written (the commands between its <!-- quickstart --> markers)
# in a scratch folder, with two changes a test needs: the demo trains for 6 seconds instead of
# 9 minutes (scripts/hg.sh's install and build are the test command's own first steps), and the
# server listens on a free port. Then checks what each command should have left behind.
#   tests/quickstart.sh SOURCE_DIR HOURGLASS_BINARY WORK_DIR
set -euo pipefail
src=$1 bin=$2 work=$3
rm -rf "$work"
mkdir -p "$work/build"
ln -s "$src/tests" "$work/tests"
ln -s "$bin" "$work/build/hourglass"
port=$((20000 + $$ % 20000))
commands=$(sed -n '/^<!-- quickstart -->$/,/^<!-- \/quickstart -->$/p' "$src/README.md" |
  sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')
[ -n "$commands" ] || { echo "quickstart: no quick start block in README.md" >&2; exit 1; }
grep -q '^scripts/hg.sh demo$' <<<"$commands" ||
  { echo "quickstart: the block no longer starts with scripts/hg.sh demo" >&2; exit 1; }
commands=$(sed -e 's#^scripts/hg.sh demo$#build/hourglass demo --minutes 0.1 --test-samples 16#' \
  -e "s/8080/$port/g" <<<"$commands")
cd "$work"
out=$(timeout 600 bash -euo pipefail -c "$commands" 2>&1) || {
  echo "$out"
  echo "quickstart: a command failed" >&2
  exit 1
}
echo "$out"
fail() { echo "quickstart: $1" >&2; exit 1; }
[ -s demo/report.md ] || fail "no demo/report.md"
[ -s demo/run/last.hg ] || fail "no demo/run/last.hg"
[ -s drawn/005808361.jpg ] || fail "predict --draw wrote no drawn/005808361.jpg"
grep -q '1 input, ' <<<"$out" || fail "predict printed no summary"
grep -q '"people"' <<<"$out" || fail "the server's answer has no people"
echo "quickstart: every command ran"
