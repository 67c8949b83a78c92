#!/usr/bin/env bash
# The project's two entry points (see README):
#   scripts/hg.sh demo   install what is missing, build in Release, run `hourglass demo`
#   scripts/hg.sh test   install what is missing, build in Release, run the whole test suite
# Extra arguments go to `hourglass demo` or to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-}"
shift || true
case "$what" in
  demo|test) ;;
  *) echo "usage: scripts/hg.sh demo|test [args...]" >&2; exit 2 ;;
esac

scripts/setup.sh
BUILD="${HG_BUILD_DIR:-build}"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j "$(nproc)"

if [ "$what" = demo ]; then
  exec "$BUILD/hourglass" demo "$@"
fi
cd "$BUILD"
exec ctest --output-on-failure --timeout 1500 "$@"
