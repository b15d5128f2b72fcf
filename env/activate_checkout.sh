#!/usr/bin/env bash
# Builds or reuses the cached environment (env/build.sh), then prints, as its last line, the path of
# this checkout's activation script: the environment's activate.sh, plus this checkout on PYTHONPATH
# and its console scripts (setup.py's entry points, e.g. `ik_bench`) on PATH. The script lives in the
# cache, keyed by the checkout's path, so the checkout stays clean; it is not part of the environment
# (build.sh leaves this file out of the environment's key).
set -euo pipefail

checkout=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
env_activate=$(bash "$checkout/env/build.sh")
cache=$(dirname "$(dirname "$env_activate")")
dir="$cache/checkouts/$(printf '%s' "$checkout" | sha256sum | cut -c1-16)"
mkdir -p "$dir/bin"

# Concurrent runs for one checkout write the same files: each is written aside, then renamed.
publish() { cat >"$1.$$" && chmod "$2" "$1.$$" && mv -f "$1.$$" "$1"; }

# setup.py's console_scripts entries, "name = package.module:function".
grep -oE '"[A-Za-z0-9_]+ = [A-Za-z0-9_.]+:[A-Za-z0-9_]+"' "$checkout/setup.py" | tr -d '"' |
  while read -r name _ target; do
    publish "$dir/bin/$name" 755 <<WRAPPER
#!/bin/sh
exec python -c 'import sys; sys.argv[0] = "$name"; from ${target%%:*} import ${target##*:}; sys.exit(${target##*:}())' "\$@"
WRAPPER
  done

publish "$dir/activate.sh" 644 <<ACTIVATE
# ik_neural checkout $checkout. Source it (bash or zsh).
. "$env_activate"
export PYTHONPATH="$checkout\${PYTHONPATH:+:\$PYTHONPATH}"
export PATH="$dir/bin:\$PATH"
ACTIVATE
echo "$dir/activate.sh"
