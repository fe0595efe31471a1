# rlb: `make demo` runs the main scenario, `make test` the whole suite.
# Both install what they need (Debian packages, a venv with rlb built in place).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
DEB_PKGS := dpdk libdpdk-dev pkg-config gcc make python3-venv python3-dev \
            iproute2 nftables ethtool iputils-ping tcpdump curl wrk nginx-light \
            iperf3 procps haproxy openssh-client frr frr-pythontools keepalived \
            systemd prometheus libpcap-dev openvswitch-switch
STAMP := $(VENV)/.built
# The tested versions (README, "Pins"): every pip install here is held to them, the
# isolated build of the extensions too.
PINS  := -c constraints.txt --build-constraint constraints.txt

.PHONY: setup deps build demo test unit bench annotate clean install

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
	@# pipefail: a build that fails must fail here (the old .so files would import fine)
	set -o pipefail; $(VENV)/bin/pip install -q $(PINS) -e '.[test,bench]' 2>&1 | { grep -vE 'BuildBackendWarning|^ *!!|^ *\*+$$|Please be careful|name as your package|take precedence|wheel_obj|^ *$$' || true; }
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

# `make install`: PREFIX/bin/rlb, a script that runs this checkout's venv (rlb is built
# in place, -e: the checkout stays where it is, and `git pull && make` updates what runs;
# a script, not a symlink, so that it exec's: the daemon is the unit's main process),
# the unit rlb@.service, the README it names, and /etc/rlb/ for NAME.conf. DESTDIR
# stages it all under another root (tests, packages). systemctl only where systemd runs.
PREFIX  ?= /usr/local
DESTDIR ?=
UNIT    := /etc/systemd/system/rlb@.service

install: setup
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/rlb \
	  $(DESTDIR)$(dir $(UNIT)) $(DESTDIR)/etc/rlb
	printf '#!/bin/sh\n# rlb from %s (make install)\nexec "%s" -m rlb "$$@"\n' \
	  '$(CURDIR)' '$(abspath $(PY))' > $(DESTDIR)$(PREFIX)/bin/rlb.new
	chmod 755 $(DESTDIR)$(PREFIX)/bin/rlb.new && mv -f $(DESTDIR)$(PREFIX)/bin/rlb.new $(DESTDIR)$(PREFIX)/bin/rlb
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/doc/rlb/README.md
	sed 's|/usr/local/|$(PREFIX)/|g' contrib/rlb@.service > $(DESTDIR)$(UNIT).new
	chmod 644 $(DESTDIR)$(UNIT).new && mv -f $(DESTDIR)$(UNIT).new $(DESTDIR)$(UNIT)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed. An instance: write /etc/rlb/NAME.conf, then"
	@echo "  systemctl enable --now rlb@NAME      # start now and at boot"
	@echo "  systemctl reload rlb@NAME            # the edited file as one commit"
	@echo "  journalctl -u rlb@NAME               # its log (-t rlb-audit: who changed what)"
	@[ -d /run/systemd/system ] || echo "(systemd is not running here: no systemctl was run)"

clean:
	rm -rf build $(VENV) *.egg-info
	find rlb \( -name '*.c' -o -name '*.so' -o -name '*.html' -o -name '*.pxi' \) -delete   # all generated
