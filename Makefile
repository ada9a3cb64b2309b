# The course's two commands. Both create a local virtual environment (.venv) on
# first use, install requirements.txt and course_lib into it, and reinstall
# only when requirements.txt or pyproject.toml change.
#
#   make lab    install everything and open the course in JupyterLab
#   make test   install everything and run the whole test suite

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: lab test bench lessons solutions

$(STAMP): requirements.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -r requirements.txt -e .
	touch $(STAMP)

# (JupyterLab refuses to run as root without --allow-root: containers and CI machines often are root)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab lessons/ $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)
	COURSE_DEVICE=cpu $(VENV)/bin/python -m pytest -q

# For authors: regenerate lessons/ from solutions/; re-execute every solution notebook in place
# (fresh kernel, COURSE_DEVICE=cpu) and then regenerate lessons/; measure speed.
lessons: $(STAMP)
	$(VENV)/bin/python -m course_lib.authoring

solutions: $(STAMP)
	$(VENV)/bin/python -m course_lib.authoring --execute

bench: $(STAMP)
	$(VENV)/bin/python -m course_lib.bench
