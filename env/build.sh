#!/usr/bin/env bash
# Builds, or reuses, the virtual environment that ik_neural is developed and tested in, and prints the
# path of its activation script as the last line on stdout (progress goes to stderr).
#
# The environment lives outside the checkout, in a cache shared by all checkouts of this machine:
#   ${IK_NEURAL_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ik_neural}/env-<key>
# where <key> hashes every file under env/ (but activate_checkout.sh, which only wraps the result) and
# the Python it is built from, so a change to any requirement, to this script, to the compat
# interfaces or to the DDS profile gives a new environment.
#
# env-<key> is a symbolic link, made (by an atomic rename) only once the build has finished and passed
# its smoke check; the build itself happens in env-<key>.XXXXXX, which the link then points at. A build
# that was interrupted leaves no link, so it is never reused; the next build removes its directory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}
cache=${IK_NEURAL_ENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ik_neural}

say() { echo "[env] $*" >&2; }

# Paths are relative to env/ so that every checkout of the same content gets the same key.
key=$(
  {
    (cd "$here" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -name activate_checkout.sh -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum)
    "$python" -c 'import platform, sys; print(sys.version, sys.base_prefix, platform.machine())'
  } | sha256sum | cut -c1-16
)
link="$cache/env-$key"

if [[ -f "$link/.complete" ]]; then
  echo "$link/activate.sh"
  exit 0
fi

mkdir -p "$cache"
# One builder per key at a time; a second checkout building the same key waits, then reuses.
exec 9>"$cache/env-$key.lock"
flock 9
if [[ -f "$link/.complete" ]]; then
  echo "$link/activate.sh"
  exit 0
fi

# Leftovers of interrupted builds of this key (we hold the lock, so nobody is using them).
for old in "$cache/env-$key".*; do
  if [[ -L "$old" ]]; then rm -f "$old"; elif [[ -d "$old" ]]; then rm -rf "$old"; fi
done

dir=$(mktemp -d "$cache/env-$key.XXXXXX")
chmod 755 "$dir"
log="$dir/build.log"
started=$SECONDS
say "building $link (log: $log)"

# The build must not see a ROS installation or workspace sourced in the caller's shell: the key does
# not cover those, and the compat interfaces are built only when this environment itself lacks moveit_msgs.
unset PYTHONPATH LD_LIBRARY_PATH AMENT_PREFIX_PATH CMAKE_PREFIX_PATH COLCON_PREFIX_PATH ROS_DISTRO VIRTUAL_ENV

run() {
  if ! "$@" >>"$log" 2>&1; then
    say "FAILED: $*"
    tail -n 40 "$log" >&2
    say "full log: $log"
    exit 1
  fi
}

say "virtual environment"
run "$python" -m venv "$dir"
py="$dir/bin/python"
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')

# The ROS wheels install a .pth hook that re-executes Python at every start-up to set LD_LIBRARY_PATH
# (in no fixed order). Setting the libraries ourselves and the hook's guard variable avoids both.
export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1

say "torch (first, alone: the local CPU wheel)"
run "$py" -m pip install --no-input -r "$here/requirements-torch.txt"

say "ROS 2 wheels, build tools, test tools, benchmark reference"
run "$py" -m pip install --no-input -c "$here/requirements-torch.txt" \
  -r "$here/requirements.txt" -r "$here/requirements-build.txt" -r "$here/requirements-test.txt" \
  -r "$here/requirements-bench.txt"

# The wheels' shared libraries: the environment's lib/ and site-packages/ros_*.libs.
ld_dirs="lib"
for libs in "$site"/ros_*.libs; do
  [[ -d "$libs" ]] && ld_dirs="$ld_dirs:${libs#"$dir/"}"
done
export LD_LIBRARY_PATH="$dir/${ld_dirs//:/:$dir/}"

# The wheels were built under /opt/python/cp311-cp311; their CMake files (and ament's parent prefix
# records) still name that prefix. Point them at this environment. Binaries are left alone.
say "rewriting /opt/python paths in the wheels' CMake files"
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
pyver=$("$py" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
{ grep -rlI --null '/opt/python/' "$dir/share" "$dir/lib" --exclude-dir="$(basename "$(dirname "$site")")" || true; } |
  xargs -0 -r sed -i \
    -e "s|/opt/python/cp[0-9]*-cp[0-9]*/include/$pyver|$pyinc|g" \
    -e "s|/opt/python/cp[0-9]*-cp[0-9]*/lib/$pyver/site-packages|$site|g" \
    -e "s|/opt/python/cp[0-9]*-cp[0-9]*|$dir|g"

# moveit_msgs: use a real one if this environment has it; otherwise build the compat copy
# (GetPositionIK, GetPositionFK and the types they use, identical to moveit_msgs 2.6.0, see compat_interfaces/).
compat="$dir/compat"
if "$py" -c 'from moveit_msgs.srv import GetPositionFK, GetPositionIK' >/dev/null 2>&1; then
  say "moveit_msgs found in the environment: compat interfaces not built"
else
  say "compat interfaces (moveit_msgs subset, object_recognition_msgs/ObjectType): colcon build"
  mkdir -p "$dir/compat_ws/src"
  # Copy without COLCON_IGNORE (it keeps these out of any workspace the checkout sits in).
  cp -r "$here/compat_interfaces/object_recognition_msgs" "$here/compat_interfaces/moveit_msgs" \
    "$dir/compat_ws/src/"
  (
    cd "$dir/compat_ws"
    export AMENT_PREFIX_PATH="$dir" CMAKE_PREFIX_PATH="$dir"
    export PATH="$dir/bin:$PATH"
    run colcon --log-base "$dir/compat_ws/log" build --merge-install \
      --base-paths src --build-base build --install-base "$compat" \
      --cmake-args -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF
  )
  rm -rf "$dir/compat_ws"
fi

cp "$here/fastdds_loopback.xml" "$dir/fastdds_loopback.xml"

say "activation script"
{
  echo "# Generated by ik_neural's env/build.sh. Source it (bash or zsh): . $link/activate.sh"
  echo "IK_NEURAL_ENV='$dir'"
  echo 'export IK_NEURAL_ENV'
  echo '. "$IK_NEURAL_ENV/bin/activate"'
  echo '# The ROS wheels re-execute Python at start-up to set LD_LIBRARY_PATH unless this is set;'
  echo '# the libraries are set here instead.'
  echo 'export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1'
  echo "export LD_LIBRARY_PATH=\"\$IK_NEURAL_ENV/${ld_dirs//:/:\$IK_NEURAL_ENV/}\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
  echo 'export AMENT_PREFIX_PATH="$IK_NEURAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"'
  if [[ -d "$compat" ]]; then
    echo '# The compat interfaces (a colcon install of moveit_msgs and object_recognition_msgs).'
    echo 'export AMENT_PREFIX_PATH="$IK_NEURAL_ENV/compat:$AMENT_PREFIX_PATH"'
    echo 'export CMAKE_PREFIX_PATH="$IK_NEURAL_ENV/compat${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"'
    echo "export PYTHONPATH=\"\$IK_NEURAL_ENV/compat/lib/$pyver/site-packages\${PYTHONPATH:+:\$PYTHONPATH}\""
    echo 'export LD_LIBRARY_PATH="$IK_NEURAL_ENV/compat/lib:$LD_LIBRARY_PATH"'
  fi
  echo '# Keep ROS traffic on this machine: loopback only.'
  echo 'export RMW_IMPLEMENTATION=rmw_fastrtps_cpp'
  echo 'export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST'
  echo 'export FASTDDS_DEFAULT_PROFILES_FILE="$IK_NEURAL_ENV/fastdds_loopback.xml"'
} >"$dir/activate.sh"

say "smoke check"
run bash -c ". '$dir/activate.sh' && python -c 'import rclpy, torch, numpy, yaml, urdf_parser_py, pinocchio, pytest
import numba, pytracik
from moveit_msgs.srv import GetPositionFK, GetPositionIK
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory'"

touch "$dir/.complete"
# Atomic: make the link under a temporary name, then rename it over env-<key>.
ln -s "$(basename "$dir")" "$link.new.$$"
mv -T "$link.new.$$" "$link"
say "done in $((SECONDS - started)) s"
echo "$link/activate.sh"
