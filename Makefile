# ThreatNet: `make test` and `make run` set everything up on a fresh Debian machine.
# Debian packages need root (or sudo); the rest lives in .venv and run/.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
APT_PACKAGES := ngircd inspircd atheme-services
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup test run bench clean
setup: $(VENV)/.installed .apt-installed

.apt-installed:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing (needs root or sudo)"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@touch $@

$(VENV)/.installed: setup.cfg pyproject.toml
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

test: setup
	$(PY) -m pytest -q

run: setup
	$(PY) -m threatnet.run $(ARGS)

bench: setup
	$(PY) bench/core.py

clean:
	rm -rf $(VENV) .apt-installed run .pytest_cache
