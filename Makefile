# The course's two commands. Both create a local virtual environment (.venv) on first use, install
# requirements.txt (pinned) under constraints.txt and course_lib into it, and reinstall only when
# requirements.txt, constraints.txt or pyproject.toml change.
#
#   make lab    install everything and open the course in JupyterLab
#   make test   install everything and run the test suite: the library tests, the grader end to end, one
#               lesson under Run All in JupyterLab + Chromium, and every solution notebook under strict
#               nbval natively (spread over the CPU cores), then every solution notebook again under a
#               second numeric environment (generic CPU kernels, one thread), so that no stored output
#               depends on the machine's vector unit or thread count.
#   make test-all   `make test`, then the whole course end to end (what CI runs): every lesson under Run
#               All in the browser with every slider moved, every solution graded as a submission.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
STAMP  := $(VENV)/.installed
# pytest workers: one per core (at most 4); `make test WORKERS=0` runs in one process
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)
PYTEST := COURSE_DEVICE=cpu $(VENV)/bin/python -m pytest -q -rs $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadfile)

.PHONY: lab test test-all test-numerics bench lessons solutions relock

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -r requirements.txt -c constraints.txt -e .
	touch $(STAMP)

# (JupyterLab refuses to run as root without --allow-root: containers and CI machines often are root)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab lessons/ $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP)
	$(PYTEST) -m "not whole_course"
	$(MAKE) --no-print-directory test-numerics

test-all: test
	$(PYTEST) -m whole_course

# The solution notebooks under strict nbval with torch's generic (non-vectorized) CPU kernels and one
# thread: another machine's numerics. `make test` runs it after the native pass.
test-numerics: $(STAMP)
	ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PYTEST) solutions/

# For authors: regenerate lessons/ from solutions/; re-execute every solution notebook in place
# (fresh kernel, COURSE_DEVICE=cpu) and then regenerate lessons/; measure speed.
lessons: $(STAMP)
	$(VENV)/bin/python -m course_lib.authoring

solutions: $(STAMP)
	$(VENV)/bin/python -m course_lib.authoring --execute

bench: $(STAMP)
	$(VENV)/bin/python -m course_lib.bench

# For maintainers, after changing a pin in requirements.txt: a fresh environment from the new pins,
# the whole test suite in it, and constraints.txt rewritten from what was installed.
relock:
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -r requirements.txt -e .
	touch $(STAMP)
	$(MAKE) --no-print-directory test-all
	{ echo "# Every package the course's environment holds, as tested (written by \`make relock\`; torch is pinned in requirements.txt)."; \
	  $(VENV)/bin/python -m pip freeze --exclude-editable | grep -v -i -E '^(torch|course.lib)=='; } > constraints.txt
	touch $(STAMP)
