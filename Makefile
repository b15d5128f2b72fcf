# ik_neural's development environment and tests (machines without a ROS distribution).
# On a real ROS 2 machine use colcon instead: colcon build && colcon test.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

.PHONY: env test

# Builds (first time, several minutes) or reuses (seconds) the cached environment; the last line
# printed is this checkout's activation script to source in your own shell.
env:
	@bash env/activate_checkout.sh

# The checkout is put on PYTHONPATH (by its activation script) rather than installed: the cached
# environment is shared by every checkout. No bytecode and no pytest cache, so the tree stays clean.
test:
	@activate=$$(bash env/activate_checkout.sh) && \
	  source "$$activate" && \
	  export PYTHONDONTWRITEBYTECODE=1 && \
	  python -m pytest -p no:cacheprovider $(PYTEST_ARGS) test
