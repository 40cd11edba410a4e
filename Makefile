# Two commands on a fresh Debian machine, as root:
#   make run    the whole platform with demo data
#   make test   the test suite (ruff, then pytest against real Asterisk, PostgreSQL, Chromium)
# Everything installed lives outside git, under $(CACHE), and each step is idempotent.

SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/renraku
VENV ?= $(CACHE)/venv
PY := $(VENV)/bin/python
RENRAKU := $(VENV)/bin/renraku
APT_PACKAGES := debootstrap sox libsox-fmt-all ffmpeg espeak-ng open-jtalk open-jtalk-mecab-naist-jdic \
	chromium fonts-noto-cjk fonts-vlgothic fonts-droid-fallback python3-venv ca-certificates docker-compose kamailio sipvicious
APT_STAMP := $(CACHE)/apt-$(shell echo $(APT_PACKAGES) | md5sum | cut -c1-8).stamp
# The editable install points at this checkout: another checkout (CI's clone) reinstalls.
VENV_STAMP := $(VENV)/.installed-$(shell (cat pyproject.toml; echo $(CURDIR)) | md5sum | cut -c1-8)
export RENRAKU_ASTERISK_ROOT ?= $(CACHE)/asterisk-root

.PHONY: setup run test lint bench clean-cache

setup: $(APT_STAMP) $(VENV_STAMP) asterisk-root voices

$(APT_STAMP):
	@mkdir -p $(CACHE)
	@echo "==> apt packages: $(APT_PACKAGES)"
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES); \
	fi
	@touch $@

$(VENV_STAMP): pyproject.toml
	@echo "==> Python virtualenv in $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@rm -f $(VENV)/.installed-*
	@touch $@

asterisk-root: $(VENV_STAMP)
	@$(RENRAKU) asterisk provision

voices: $(VENV_STAMP)
	@$(RENRAKU) prompts voices

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .

test: setup lint
	@# Two workers, a file each: the suite mostly waits on real calls (README, The two commands).
	$(PY) -m pytest -p no:cacheprovider -ra --durations=20 -n 2 --dist loadfile

run: setup
	$(RENRAKU) db upgrade
	$(RENRAKU) demo-data
	$(RENRAKU) prompts build
	$(RENRAKU) run --demo

bench: setup
	$(PY) -m benchmarks

clean-cache:
	@# Bind mounts into the Asterisk root must go first, or rm would follow them.
	@grep -o " $(CACHE)/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l
	rm -rf $(CACHE)
