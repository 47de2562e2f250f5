# Main job: `make all` fetches the data, executes every notebook (full run) and exports the report.
# Tests:    `make test` runs the unit tests and re-executes the notebooks in smoke mode.
# Set FKP_DATA_MIRROR=DIR to read the archives from a local folder instead of the internet.
PY ?= python3
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: all data notebooks report test
all: data notebooks report

data:
	$(PY) -m helpers.download imm ibug youtube_faces

notebooks: data
	$(PY) -m jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=-1 $(NOTEBOOKS)

report:
	$(PY) -m helpers.report

test:
	FKP_SMOKE=1 $(PY) -m pytest -q -p no:cacheprovider tests --nbval-lax notebooks
