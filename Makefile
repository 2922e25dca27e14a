# The two commands a user needs: `make setup` (then `.venv/bin/govctl up`) and `make test`.
PY ?= python3
VENV := .venv
PYTEST := $(VENV)/bin/pytest

.PHONY: setup test test-fast
setup:
	@$(PY) scripts/setup.py

# Everything: the fast tier and the slow/root end-to-end tier.
test: setup
	$(PYTEST) -q

# The fast tier only (seconds).
test-fast: setup
	$(PYTEST) -q -m "not slow"
