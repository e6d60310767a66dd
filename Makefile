# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUN_STAMP  := $(VENV)/.run-$(HASH)
TEST_STAMP := $(VENV)/.test-$(HASH)
# uv installs in parallel and in seconds; pip is the fallback where uv cannot be had.
pip_install = if $(BIN)/python -m uv --version >/dev/null 2>&1; \
	then $(BIN)/python -m uv pip install --quiet --python $(BIN)/python $(1); \
	else $(BIN)/python -m pip install --quiet --disable-pip-version-check $(1); fi

.PHONY: run test soak bench screenshot install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	-$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

# `make run` needs only the runtime dependencies; the test extras (a browser driver
# among them) are installed by `make test`.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(call pip_install,-e .)
	rm -f $(VENV)/.run-*
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(call pip_install,-e '.[test]')
	rm -f $(VENV)/.run-* $(VENV)/.test-*
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/purser run

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

soak: $(TEST_STAMP)
	$(BIN)/python -m pytest -m slow tests/reliability tests/store/test_standing_model.py

# Refreshes the README's pictures of the sandbox and a chart (make test writes its screenshot to a temporary folder).
screenshot: $(TEST_STAMP)
	PURSER_SCREENSHOT=$(CURDIR)/docs/sandbox.png PURSER_CHART_SCREENSHOT=$(CURDIR)/docs/usage-chart.png \
		$(BIN)/python -m pytest -q tests/sandbox/test_browser.py -k "see_the_alert or chart_arrives"

# Every benchmark in turn (bench/common.py and bench/load.py are parts they share), each after the
# machine's load average: others may be using its cores, and the figures say as much about that.
# Each ends with one line `NAME: ratio R (target T) met|MISSED`; the summary gathers those lines.
# A benchmark that misses, fails or prints no such line fails `make bench`, once all have run.
BENCH_LINE := ^[a-z-]+: ratio .* (met|MISSED)$$
bench: $(TEST_STAMP)
	@mkdir -p var/bench; : > var/bench/summary.txt; \
	for b in $(filter-out bench/common.py bench/load.py,$(wildcard bench/*.py)); do \
		echo "== $$b, load average $$(cut -d' ' -f1-3 /proc/loadavg)"; \
		{ PYTHONUNBUFFERED=1 $(BIN)/python $$b; echo $$? > var/bench/exit; } 2>&1 | tee var/bench/output.txt; \
		rc=$$(cat var/bench/exit); lines=$$(grep -E '$(BENCH_LINE)' var/bench/output.txt); \
		if [ -z "$$lines" ]; then lines="$$(basename $$b .py): no result line, MISSED"; fi; \
		if [ "$$rc" != 0 ]; then lines="$$lines (exited $$rc: counted as MISSED)"; fi; \
		echo "$$lines" >> var/bench/summary.txt; \
	done; \
	echo "== summary, load average $$(cut -d' ' -f1-3 /proc/loadavg)"; cat var/bench/summary.txt; \
	! grep -q MISSED var/bench/summary.txt

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
