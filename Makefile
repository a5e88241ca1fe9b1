# Redis Beyond Cache: the two commands of the README, and a few helpers.
#   make lab    set up, check the servers, open JupyterLab on notebooks/
#   make test   set up, then the whole suite: tests/ and every notebook (nbval, strict)
# WORKSHOP_SIZE=workshop|ci picks the experiment size (lab: workshop, test: ci).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Jupyter refuses to run as root unless told; containers and CI run as root.
ROOT_FLAG := $(shell [ "$$(id -u)" = "0" ] && echo --allow-root)

.PHONY: lab test setup servers bench lint execute clean

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10 or newer is needed, found " + sys.version)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)

servers: setup
	$(BIN)/python -m helpers.check

lab: servers
	$(BIN)/jupyter lab $(ROOT_FLAG) --notebook-dir=notebooks

test: setup
	$(BIN)/ruff check .
	WORKSHOP_SIZE=$${WORKSHOP_SIZE:-ci} $(BIN)/python -m pytest

bench: servers
	$(BIN)/python -m helpers.bench leaderboard
	$(BIN)/python -m helpers.bench streams
	$(BIN)/python -m helpers.bench ratelimit

# Re-run every notebook at workshop size and save its outputs (what is committed).
execute: servers
	WORKSHOP_SIZE=workshop $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=1800 notebooks/[0-9]*.ipynb
	# fold progress-bar refreshes into their final line, as JupyterLab shows them
	$(BIN)/jupyter nbconvert --to notebook --inplace --CoalesceStreamsPreprocessor.enabled=True \
		notebooks/[0-9]*.ipynb

clean:
	rm -rf $(VENV) .workshop .pytest_cache
