# Two commands on a fresh machine:  make demo  (set up, then run the twin against the
# simulated workcell)  and  make test  (set up, then run the test suite).
SHELL := /bin/bash
DURATION ?= 90
PYTEST_ARGS ?=
ENV := source scripts/env.sh &&

.PHONY: setup demo test bench degradation-plot analytics-models clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh $(DURATION)

# colcon test runs the whole pytest suite (test/, with the reference bags) the way a ROS 2 install
# does; colcon test-result prints the counts and fails on any failed test. PYTEST_ARGS are passed
# on (each prefixed with a space, as colcon asks for arguments that look like options).
test: setup
	@$(ENV) colcon test --event-handlers console_direct+ \
		$(if $(PYTEST_ARGS),--pytest-args $(foreach a,$(PYTEST_ARGS),' $(a)')); \
		status=$$?; colcon test-result --verbose && exit $$status

degradation-plot: setup
	@$(ENV) twin_sim_generate --scenario config/scenarios/wear_and_faults.yaml \
		--duration 14400 --out out/wear_run --plot docs/degradation.png

# Sensor-level simulator data (1 h nominal, run to failure) plus ~5 min of frames recorded
# through the live data path (scripts/live_frames.py: the drivers' and synchronizer's timing and
# quantization), and the analytics models fitted on them into config/models/ (about 20 minutes).
analytics-models: setup
	@$(ENV) python -m twin_maintenance.sim_frames --scenario nominal --duration 3600 --seed 1 \
		--out out/analytics/nominal_train
	@$(ENV) python -m twin_maintenance.sim_frames --scenario run_to_failure --duration 4800 --seed 4 \
		--out out/analytics/rtf_train --health-window 60
	@test -f out/analytics/live/fit.csv || $(ENV) python scripts/live_frames.py --out out/analytics/live
	@$(ENV) twin_anomaly fit --data out/analytics/nominal_train/frames.csv --label-column label \
		--data-also out/analytics/live/fit.csv --model config/models/anomaly --urdf config/arm.urdf
	@$(ENV) twin_rul train --data out/analytics/rtf_train/health.csv --features vibration \
		--model config/models/rul.json

clean:
	rm -rf build install log out .pytest_cache

# Re-records the reference bags in test/data/bags/ (simulator + drivers live, ~1 min per bag)
# that test/test_regression_bags.py replays; run it on an otherwise idle machine.
.PHONY: reference-bags
reference-bags: setup
	@$(ENV) python scripts/reference_bags.py

# Regenerates the predictor's shipped model (config/models/predictor, ~100 kB): an identification
# run of the simulated arm, then a 5-member physics-informed ensemble trained for at most 5 min.
.PHONY: predictor-model
predictor-model: setup
	@$(ENV) twin_sim_generate --scenario identification --duration 300 --truth-rate 1000 \
		--out out/identification && \
	nice twin_train --model ensemble --data out/identification/truth.csv --invariant-joints joint_1 --batch 128 \
		--time-limit 300 --out config/models/predictor
