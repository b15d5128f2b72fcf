# ik_neural's development environment and tests (machines without a ROS distribution).
# On a real ROS 2 machine use colcon instead: colcon build && colcon test.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

.PHONY: env test test-unit lint format run demo

# Builds (first time, several minutes) or reuses (seconds) the cached environment; the last line
# printed is this checkout's activation script to source in your own shell.
env:
	@bash env/activate_checkout.sh

# Lint and format first (ruff.toml): a lint error or an unformatted file fails the tests.
# The checkout is put on PYTHONPATH (by its activation script) rather than installed: the cached
# environment is shared by every checkout. No bytecode and no pytest cache, so the tree stays clean.
test: lint
	@activate=$$(bash env/activate_checkout.sh) && \
	  source "$$activate" && \
	  export PYTHONDONTWRITEBYTECODE=1 && \
	  python -m pytest -p no:cacheprovider $(PYTEST_ARGS) test

lint:
	@activate=$$(bash env/activate_checkout.sh) && source "$$activate" && \
	  ruff check --no-cache . && ruff format --no-cache --check .

# Formats the tree in place (what `make lint` checks).
format:
	@activate=$$(bash env/activate_checkout.sh) && source "$$activate" && \
	  ruff format --no-cache . && ruff check --no-cache --fix .

# The fast part alone (no ROS graph, no colcon build): a developer's loop, in well under a minute.
test-unit:
	@$(MAKE) -s test PYTEST_ARGS="-m unit $(PYTEST_ARGS)"

# `exec $(EXEC_WITH) VAR COMMAND...`: COMMAND, then the words of $VAR split as a shell splits them (quotes
# work: -p "model_path:=''") but never expanded. Pasted into the recipe, bash would expand them: the `~` of
# NODE_ARGS="-r ~/compute_ik:=/compute_ik" became $HOME, and the remap silently matched nothing.
EXEC_WITH = python -c 'import os, shlex, sys; argv = sys.argv[2:] + shlex.split(os.environ.get(sys.argv[1], "")); os.execvp(argv[0], argv)'
export NODE_ARGS CLIENT_ARGS CONFIG ROBOT

# The node (Ctrl-C stops it; its first log line says what it serves) with one params file: a shipped robot's,
# config/$(ROBOT).yaml (default: panda), or CONFIG=path/to/my_robot.yaml instead (relative to this folder).
# NODE_ARGS reaches it verbatim: make run NODE_ARGS="-r ~/compute_ik:=/compute_ik -r ~/compute_fk:=/compute_fk"
run:
	@if [[ -n "$${CONFIG-}" && -n "$${ROBOT-}" ]]; then \
	  echo "make run: give CONFIG (a params file) or ROBOT (a shipped robot), not both" >&2; exit 2; fi; \
	config=$${CONFIG:-config/$${ROBOT:-panda}.yaml}; \
	if [[ -n "$${CONFIG-}" && ! -f "$$config" ]]; then echo "make run: CONFIG=$$config is not a file" >&2; exit 2; fi; \
	if [[ ! -f "$$config" ]]; then \
	  shipped=$$(cd config && ls *.yaml | sed 's/\.yaml$$//' | paste -sd , | sed 's/,/, /g'); \
	  echo "make run: ROBOT=$$ROBOT is not a shipped robot; they are: $$shipped (or CONFIG=path/to/params.yaml)" >&2; \
	  exit 2; fi; \
	activate=$$(bash env/activate_checkout.sh) && source "$$activate" && \
	  exec $(EXEC_WITH) NODE_ARGS ik_node --ros-args --params-file "$$config"

# With `make run` going in another shell: random reachable poses of its robot (ROBOT, default panda) sent to
# the node, each answer checked by FK here, and the round-trip latency. More: make demo CLIENT_ARGS="--count 1000 --quiet".
demo:
	@activate=$$(bash env/activate_checkout.sh) && source "$$activate" && \
	  exec $(EXEC_WITH) CLIENT_ARGS ik_client --robot "$${ROBOT:-panda}"
