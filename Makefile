# Redis Beyond Cache: the two commands of the README, and a few helpers.
#   make lab    set up, check the servers, open JupyterLab on notebooks/
#   make test   set up, then the whole suite: tests/ and every notebook (nbval, strict)
#   make test-browser  JupyterLab, the slideshows and make html's pages in a real Chromium (tests/browser)
#   make fit-slides    re-fit the slide breaks to a 1280x800 screen after editing a notebook
#   make test-servers  the whole suite once per server found (pip Redis 8.2, pip Valkey 8.1, system Redis)
#   make doctor pre-flight check of this laptop: versions, servers, memory, a ten-second benchmark
#   make html   the executed notebooks as a static site in site/, to read before running (EXECUTE=1 re-runs)
#   make slides present a notebook with RISE: make slides NOTEBOOK=02 (default 01)
# WORKSHOP_SIZE=workshop|ci picks the experiment size (lab: workshop, test: ci).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Jupyter refuses to run as root unless told; containers and CI run as root.
ROOT_FLAG := $(shell [ "$$(id -u)" = "0" ] && echo --allow-root)

.PHONY: lab test test-browser fit-slides test-servers setup servers bench lint execute clean doctor html slides

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (the pinned numpy and pandas require it), found " + sys.version)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	@touch $(STAMP)

setup: $(STAMP)

servers: setup
	$(BIN)/python -m helpers.course.doctor --servers

# JUPYTER_ARGS: options for JupyterLab itself, e.g. make lab JUPYTER_ARGS="--port=8890 --no-browser --IdentityProvider.token=secret"
JUPYTER_ARGS ?=
# the workshop's JupyterLab settings (the slideshows' extensions): see the file
LAB_CONFIG := helpers/course/jupyter_server_config.py

lab: servers
	$(BIN)/jupyter lab $(ROOT_FLAG) --config=$(LAB_CONFIG) --notebook-dir=notebooks $(JUPYTER_ARGS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	WORKSHOP_SIZE=$${WORKSHOP_SIZE:-ci} $(BIN)/python -m pytest

# What a learner sees in JupyterLab, in Debian's Chromium driven by Playwright (tests/browser; installs
# chromium with apt-get when run as root; never downloads a browser): Run All through the UI, the RISE
# slideshow at 1280x800, make html's pages offline. Screenshots in .workshop/browser/. .ci/run runs it.
test-browser: setup
	WORKSHOP_SIZE=ci WORKSHOP_BROWSER=1 $(BIN)/python -m pytest tests/browser -p no:nbval -o addopts="-ra -p no:cacheprovider"

# After editing a notebook: subslide breaks wherever a slide would be taller than a 1280x800 screen.
fit-slides: setup
	$(BIN)/python -m helpers.course.slides

# The whole suite (notebooks included) once per Redis-compatible server this machine has, then a table.
# MATRIX_REQUIRE=3 fails when fewer servers are found (CI: the pip Redis, the pip Valkey, the system Redis).
MATRIX_REQUIRE ?= 1
test-servers: setup
	WORKSHOP_SIZE=$${WORKSHOP_SIZE:-ci} $(BIN)/python -m helpers.course.matrix --require $(MATRIX_REQUIRE)

bench: servers
	$(BIN)/python -m helpers.bench leaderboard
	$(BIN)/python -m helpers.bench streams
	$(BIN)/python -m helpers.bench ratelimit

# Re-run every notebook at workshop size and save its outputs (what is committed), on throwaway
# servers of the default binaries (helpers.servers; WORKSHOP_REDIS picks another Redis).
execute: setup
	WORKSHOP_SIZE=workshop $(BIN)/python -m helpers.servers $(BIN)/jupyter nbconvert --to notebook \
		--execute --inplace --ExecutePreprocessor.timeout=1800 notebooks/[0-9]*.ipynb
	# fold progress-bar refreshes into their final line, as JupyterLab shows them
	$(BIN)/jupyter nbconvert --to notebook --inplace --CoalesceStreamsPreprocessor.enabled=True \
		notebooks/[0-9]*.ipynb

# Pre-flight check for a room of laptops; every line that is not ok says how to fix it.
doctor: setup
	$(BIN)/python -m helpers.course.doctor

# JupyterLab opening straight on the RISE slideshow of one notebook (jupyterlab-rise serves
# /rise/<path>); the rest of JupyterLab stays at /lab. NOTEBOOK: a number, a name or a file name.
NOTEBOOK ?= 01
SLIDES = $(notdir $(firstword $(wildcard notebooks/$(basename $(notdir $(NOTEBOOK)))*.ipynb)))

slides: servers
	@test -n "$(SLIDES)" || { echo "no notebook in notebooks/ matches NOTEBOOK=$(NOTEBOOK)"; exit 1; }
	$(BIN)/jupyter lab $(ROOT_FLAG) --config=$(LAB_CONFIG) --notebook-dir=notebooks --LabApp.default_url=/rise/$(SLIDES) $(JUPYTER_ARGS)

# The notebooks as static HTML pages with their outputs and plots, plus an index, in site/.
# By default from the committed outputs (executed at workshop size already); EXECUTE=1 runs
# every notebook again at workshop size first (about 15 minutes), into site/executed/.
SITE_SOURCES = $(if $(filter 1,$(EXECUTE)),site/executed,notebooks)

html: setup
	rm -rf site
	mkdir -p site
ifeq ($(EXECUTE),1)
	WORKSHOP_SIZE=workshop $(BIN)/python -m helpers.servers $(BIN)/jupyter nbconvert --to notebook \
		--execute --ExecutePreprocessor.timeout=1800 --output-dir site/executed notebooks/[0-9]*.ipynb
	$(BIN)/jupyter nbconvert --to notebook --inplace --CoalesceStreamsPreprocessor.enabled=True \
		site/executed/[0-9]*.ipynb
endif
	$(BIN)/python -m helpers.course.site $(SITE_SOURCES)
	@echo "open site/index.html"

clean:
	rm -rf $(VENV) .workshop .pytest_cache
