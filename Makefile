# rlb: `make demo` runs the main scenario, `make test` the whole suite.
# Both install what they need (Debian packages, a venv with rlb built in place).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
DEB_PKGS := dpdk libdpdk-dev pkg-config gcc make python3-venv python3-dev \
            iproute2 nftables ethtool iputils-ping tcpdump curl wrk nginx-light \
            iperf3 procps haproxy openssh-client frr frr-pythontools keepalived
STAMP := $(VENV)/.built
# The tested versions (README, "Pins"): every pip install here is held to them, the
# isolated build of the extensions too.
PINS  := -c constraints.txt --build-constraint constraints.txt

.PHONY: setup deps build demo test unit bench annotate clean

setup: deps build

# Debian packages: only call apt when something is missing (idempotent, fast). The
# packages' own services (nginx, FRR) are not started on the host: rlb and its labs run
# them in their namespaces with their own paths (a policy-rc.d of ours for the install,
# removed after; one already there is the admin's and left alone).
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  ours=; if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && ours=1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; rc=$$?; \
	  if [ -n "$$ours" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	  [ $$rc -eq 0 ]; \
	fi
	@getent group rlb >/dev/null || groupadd --system rlb

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -c constraints.txt --upgrade pip

# Rebuild the extensions only when their sources change (Python files are live: -e).
# counters.py is the counter table setup.py generates rlb/core/counters.pxi from.
CY_SRC := $(shell find rlb -name '*.pyx' -o -name '*.pxd' -o -name '*.h') setup.py pyproject.toml \
          constraints.txt rlb/core/counters.py

build: $(STAMP)

$(STAMP): $(VENV)/bin/python $(CY_SRC)
	$(VENV)/bin/pip install -q $(PINS) -e '.[test]' 2>&1 | grep -vE 'BuildBackendWarning|^ *!!|^ *\*+$$|Please be careful|name as your package|take precedence|wheel_obj|^ *$$' || true
	@$(PY) -c "import rlb.core.dataplane, rlb.core.stats, rlb.modes.fnat.fast, rlb.sched._builtin"
	@touch $(STAMP)

demo: setup
	$(PY) -m rlb.lab.demo

test: setup
	$(PY) -m pytest -q tests

unit: setup
	$(PY) -m pytest -q tests/unit

bench: setup
	$(PY) bench/forward.py
	$(PY) bench/fnat.py
	$(PY) bench/conntable.py

annotate: $(VENV)/bin/python
	RLB_ANNOTATE=1 $(VENV)/bin/pip install -q $(PINS) -e .

clean:
	rm -rf build $(VENV) *.egg-info
	find rlb \( -name '*.c' -o -name '*.so' -o -name '*.html' -o -name '*.pxi' \) -delete   # all generated
