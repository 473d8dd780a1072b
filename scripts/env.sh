# Source this file (bash) to use the twin from a shell: venv, the colcon install (both packages, its
# executables on PATH as there is no `ros2 run` in the venv), loopback-only DDS.
_twin_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$_twin_root/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
. "$_twin_root/install/local_setup.sh"
export PATH="$_twin_root/install/twin_bringup/lib/twin_bringup:$PATH"
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE="$_twin_root/config/fastdds_loopback.xml"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-37}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-$_twin_root/log/ros}"
unset _twin_root
