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

# The fast tier only, on every core (1 min 45 s – 2 min on 2 cores; 2 min 40 s on one).
test-fast: setup
	$(PYTEST) -q -m "not slow" -n auto
