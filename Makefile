# Two commands on a fresh machine:  make demo  (set up, then run the twin against the
# simulated workcell)  and  make test  (set up, then run the test suite).
SHELL := /bin/bash
DURATION ?= 60
PYTEST_ARGS ?=
ENV := source scripts/env.sh &&

.PHONY: setup demo test bench degradation-plot clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh $(DURATION)

test: setup
	@$(ENV) python -m pytest $(PYTEST_ARGS)

degradation-plot: setup
	@$(ENV) twin_sim_generate --scenario config/scenarios/wear_and_faults.yaml \
		--duration 14400 --out out/wear_run --plot docs/degradation.png

clean:
	rm -rf build install log out .pytest_cache
