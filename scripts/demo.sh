#!/usr/bin/env bash
# The main job: the whole twin against the simulated workcell for DURATION seconds, then a
# fidelity report (twin vs the simulator's ground truth) recorded over the run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${1:-60}"
WARMUP=10
set +u  # the generated setup scripts read unset variables
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
set -u

twin_launch --sim --dds-profile "$FASTDDS_DEFAULT_PROFILES_FILE" --duration "$DURATION" &
launcher=$!
trap 'kill -INT $launcher 2>/dev/null || true; wait $launcher' INT TERM
if [ "$DURATION" -gt $((WARMUP + 5)) ]; then
  sleep "$WARMUP"
  twin_fidelity --duration $((DURATION - WARMUP - 3)) --record "$ROOT/out/demo" || true
fi
wait $launcher
