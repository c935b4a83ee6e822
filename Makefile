# pydockerd: install, run, test and benchmark.
#
#   make install   .venv with pydockerd and the test tools, the Debian packages the tests use, a docker CLI
#   make run       the daemon in the foreground on /var/run/pydockerd.sock (extra flags: ARGS="...")
#   make test      ruff, mypy, then pytest on 2 workers (more pytest flags: PYTEST_ARGS="...")
#   make lint      ruff and mypy only
#   make bench     bench/run_bench.sh: docker run timings against pydockerd and dockerd
#   make bench-archives   peak daemon memory of docker import and load of 300,000 files, both daemons
#   make clean     caches; `make distclean` also removes .venv

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
# Rebuilt when pyproject.toml changes, so an unchanged tree installs in well under a second.
STAMP := $(VENV)/.installed
DATA_ROOT ?= /var/lib/pydockerd
ARGS ?=
PYTEST_ARGS ?=
# busybox-static: the test image; util-linux: `script` for tty tests; procps: ps/pkill in tests;
# libseccomp2: seccomp profiles are compiled with it; gcc, libc6-dev: the tests' static syscall probes.
APT_PACKAGES := busybox-static iptables curl file util-linux procps libseccomp2 gcc libc6-dev

.PHONY: help install apt-deps docker-cli run test lint pytest bench bench-archives clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

install: apt-deps $(STAMP) docker-cli

# dpkg -s alone also succeeds for a removed package whose config files remain: check its Status.
# (grep without -q reads to the end, so pipefail never sees dpkg die of SIGPIPE.)
apt-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do \
	    dpkg -s "$$p" 2>/dev/null | grep -x 'Status: install ok installed' >/dev/null || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    if ! command -v apt-get >/dev/null; then echo "install these packages:$$missing" >&2; exit 1; fi; \
	    sudo=""; if [ "$$(id -u)" != 0 ]; then sudo=sudo; fi; \
	    echo "apt-get install$$missing"; \
	    $$sudo apt-get update -q; \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

# The tests drive the real docker CLI. Where PATH has none, take the client out of Debian's docker.io
# (Debian 12 has no client-only package) into .venv/bin, without installing the package: no dockerd or
# containerd service is ever installed or started. The tests look in .venv/bin after PATH.
docker-cli:
	@if ! command -v docker >/dev/null && ! test -x $(VENV)/bin/docker; then \
	    command -v apt-get >/dev/null || { echo "install a docker CLI on PATH" >&2; exit 1; }; \
	    tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	    echo "docker CLI: extracting /usr/bin/docker of docker.io into $(VENV)/bin"; \
	    sudo=""; if [ "$$(id -u)" != 0 ]; then sudo=sudo; fi; \
	    (cd "$$tmp" && apt-get download -q docker.io) \
	        || { $$sudo apt-get update -q && (cd "$$tmp" && apt-get download -q docker.io); }; \
	    dpkg-deb -x "$$tmp"/docker.io_*.deb "$$tmp/root"; \
	    mkdir -p $(VENV)/bin; \
	    install -m 0755 "$$tmp/root/usr/bin/docker" $(VENV)/bin/docker; \
	fi

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-input -e '.[test]'
	touch $@

run: install
	$(VENV)/bin/python -m daemon.tools.seed_busybox --data-root $(DATA_ROOT)
	exec $(VENV)/bin/pydockerd --data-root $(DATA_ROOT) $(ARGS)

test: lint pytest

lint: install
	$(VENV)/bin/ruff check daemon client tests bench
	$(VENV)/bin/mypy

pytest: install
	$(VENV)/bin/pytest -n 2 -q -ra -p no:cacheprovider $(PYTEST_ARGS)

bench: install
	bench/run_bench.sh

bench-archives: install
	bench/run_bench.sh archives

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
