# Main job: `make all` fetches the data, executes every notebook (full run) and exports the report.
# Tests:    `make test` checks the code style, runs the unit tests and re-executes the notebooks in smoke mode.
# Set FKP_DATA_MIRROR=DIR to read the archives from a local folder instead of the internet.
PY ?= python3
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: all data notebooks report lint test
all: data notebooks report

data:
	$(PY) -m helpers.download imm ibug youtube_faces

# each notebook in turn through papermill, with its progress bar and the minutes it took;
# parameters reach every notebook's parameters cell: make notebooks PARAMS="-p SEED 1"
notebooks: data
	@for nb in $(NOTEBOOKS); do \
		start=$$(date +%s); echo "executing $$nb ..."; \
		$(PY) -m papermill --progress-bar --cwd notebooks $(PARAMS) $$nb $$nb || exit 1; \
		echo "$$nb: $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s"; \
	done

report:
	$(PY) -m helpers.report

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	FKP_SMOKE=1 $(PY) -m pytest -q -p no:cacheprovider tests --nbval-lax notebooks
