#!/usr/bin/env bash
# The main job: the whole twin against the simulated workcell for DURATION seconds (default 90: the
# maintenance planner's first assessment needs 60 s of frames), recorded after a warm-up into
# out/demo/bag; then the twin stops and a summary of every layer is printed (fidelity against the
# simulator's ground truth, alarms with their verdict, health, RUL and risk per joint, prediction
# against holding the position), also kept in out/demo/summary.txt beside out/demo/report.html.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${1:-90}"
WARMUP=10
OUT="$ROOT/out/demo"
set +u  # the generated setup scripts read unset variables
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
set -u

twin_launch --sim --dds-profile "$FASTDDS_DEFAULT_PROFILES_FILE" &
launcher=$!
trap 'kill -INT $launcher 2>/dev/null || true; wait $launcher' INT TERM EXIT
mkdir -p "$OUT"
rm -rf "$OUT/bag" "$OUT/summary.txt"
sleep "$WARMUP"
status=0
twin_report --live --duration $((DURATION > WARMUP + 5 ? DURATION - WARMUP : 5)) --bag "$OUT/bag" \
  --out "$OUT/report.html" --summary > "$OUT/summary.txt" || status=$?
kill -INT $launcher
wait $launcher || true
trap - INT TERM EXIT
echo
cat "$OUT/summary.txt"
exit $status
