# ThreatNet: `make test` and `make run` set everything up on a fresh Debian machine.
# Debian packages need root (or sudo); the rest lives in .venv and run/.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
APT_PACKAGES := ngircd inspircd atheme-services rbldnsd nftables conntrack iproute2 fail2ban curl python3-pyinotify \
  chromium crowdsec crowdsec-firewall-bouncer
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The oldest Limnoria the plugins support (Debian 13's), as threatnet_irc/version.py says:
# `make test` also runs the plugin suites and the real-server tests of what differs between
# it and the newest Limnoria (accounts, voicing, the HTTP API) in a venv of its own.
LIMNORIA_FLOOR := $(shell sed -n 's/^MINIMUM = "\([0-9.]*\)".*/\1/p' threatnet_irc/version.py)
FLOOR_VENV := .venv-limnoria-floor
FLOOR_PY := $(FLOOR_VENV)/bin/python
FLOOR_TESTS := tests/plugins tests/integration/test_stack.py tests/integration/test_accounts.py \
  tests/integration/test_guard.py tests/integration/test_http_api.py

.PHONY: setup test run agent bench clean clean-run
setup: $(VENV)/.installed .apt-installed

# crowdsec's post-install registers with CrowdSec's central API unless
# /etc/crowdsec/online_api_credentials.yaml is non-empty: offline that fails and leaves
# the package half-configured. ThreatNet runs crowdsec without the central API, so when
# crowdsec is to be installed the file says so first; a package left half-configured
# (an earlier install) is finished with dpkg --configure -a.
CROWDSEC_CAPI := /etc/crowdsec/online_api_credentials.yaml
installed = for p in $(APT_PACKAGES); do dpkg -s $$p 2>/dev/null | grep -q '^Status: install ok installed' || echo $$p; done
.apt-installed: Makefile
	@missing="$$($(installed))"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing "(needs root or sudo)"; \
	  if echo "$$missing" | grep -qx crowdsec && [ ! -s $(CROWDSEC_CAPI) ]; then \
	    $(SUDO) mkdir -p /etc/crowdsec && echo '# no central API: ThreatNet runs crowdsec offline' \
	      | $(SUDO) tee $(CROWDSEC_CAPI) >/dev/null; fi; \
	  $(SUDO) apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing \
	    || DEBIAN_FRONTEND=noninteractive $(SUDO) dpkg --configure -a; \
	  missing="$$($(installed))"; \
	  if [ -n "$$missing" ]; then echo "Not installed:" $$missing; exit 1; fi; \
	fi
	@touch $@

# A venv whose creation was interrupted (Ctrl-C during `python3 -m venv`) has a python
# but no pip: it is made again rather than failing on `No module named pip` forever.
$(VENV)/.installed: setup.cfg pyproject.toml
	@if [ -e $(VENV) ] && ! { [ -f $(VENV)/pyvenv.cfg ] && $(PY) -m pip --version >/dev/null 2>&1; }; then \
	  echo "$(VENV) is incomplete (an interrupted setup?): making it again"; rm -rf $(VENV); fi
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

$(FLOOR_VENV)/.installed: setup.cfg pyproject.toml threatnet_irc/version.py
	@if [ -e $(FLOOR_VENV) ] && ! { [ -f $(FLOOR_VENV)/pyvenv.cfg ] && $(FLOOR_PY) -m pip --version >/dev/null 2>&1; }; then \
	  echo "$(FLOOR_VENV) is incomplete (an interrupted setup?): making it again"; rm -rf $(FLOOR_VENV); fi
	[ -x $(FLOOR_PY) ] || $(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_PY) -m pip install -q --upgrade pip
	$(FLOOR_PY) -m pip install -q -e '.[test]' 'limnoria==$(LIMNORIA_FLOOR)'
	@touch $@

test: setup $(FLOOR_VENV)/.installed
	$(PY) -m pytest -q
	@echo "Limnoria $(LIMNORIA_FLOOR) (the oldest supported):"
	$(FLOOR_PY) -m pytest -q -p no:cacheprovider $(FLOOR_TESTS)

# make run [PORT=6667] [TLS_PORT=6697] [CHANNEL=#threatnet] [NICK=threatnet] [BLOCK=3600]
# [FRESH=1]: local InspIRCd + Atheme + the channel bot (over TLS, pinned); the network
# keeps its accounts, channel and TLS certificate across runs unless FRESH=1 (or
# `make clean-run`, which only forgets it). make run SERVER=host:port
# [TLS=1] [SERVER_FP=sha256] [CERTFILE=pem] [SASL_FILE=f] [CHANNEL=…] [NICK=…]: only the
# bot, on that network (SASL from THREATNET_SASL_USER and
# THREATNET_SASL_PASSWORD, or SASL_FILE). make agent NAME=agent1 [FEED=/var/log/auth.log]:
# one more agent on the network of `make run`. Only variables given on the command line
# count (an environment variable such as NAME or PORT does not).
cli = $(if $(filter command line,$(origin $(1))),$($(1)))
opt = $(if $(call cli,$(1)),$(2) '$(call cli,$(1))')
run: setup
	@$(PY) -m scripts.threatnet_run run $(call opt,SERVER,--server) $(call opt,PORT,--port) \
	  $(call opt,CHANNEL,--channel) $(call opt,NICK,--nick) $(call opt,BLOCK,--block) \
	  $(if $(call cli,TLS),--tls) $(call opt,SASL_FILE,--sasl-file) $(call opt,TLS_PORT,--tls-port) \
	  $(call opt,SERVER_FP,--server-fingerprint) $(call opt,CERTFILE,--certfile) \
	  $(if $(call cli,FRESH),--fresh) $(ARGS)

clean-run: setup
	@$(PY) -m scripts.threatnet_run clean

agent: setup
	@$(PY) -m scripts.threatnet_run agent --name '$(call cli,NAME)' $(call opt,FEED,--feed) \
	  $(call opt,SERVER,--server) $(call opt,CHANNEL,--channel) $(if $(call cli,TLS),--tls) \
	  $(call opt,SERVER_FP,--server-fingerprint) $(call opt,CERTFILE,--certfile) $(ARGS)

bench: setup
	$(PY) -m bench.core

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .apt-installed run .pytest_cache
