# The README's commands. Each installs what it needs first (idempotent).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QUICKSTART_OUT ?= runs/quickstart

.PHONY: install quickstart test docs clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,dev,deploy]'
	touch $(STAMP)

quickstart: install
	$(VENV)/bin/hybrid-edge quickstart --out $(QUICKSTART_OUT)

# Regenerate the README's and docs/' example blocks, docs/cli.md and docs/images/report.png
# from real runs (after `make quickstart`).
docs: install
	$(PY) -m benchmarks.docs --cli --screenshot --quickstart $(QUICKSTART_OUT)

# Debian packages the tests use for real: Chromium renders the HTML report and, driven by
# chromium-driver + selenium, the live demo page; GStreamer's RTSP
# server (under Debian's python3 with GObject introspection) is the live camera on 127.0.0.1;
# OpenSSH's sshd serves the loopback boards of the deploy tests.
RTSP_CHECK := /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
RTSP_DEBS := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good

test: install
	@(command -v chromium && command -v chromedriver) >/dev/null || (apt-get update && apt-get install -y chromium chromium-driver)
	@command -v /usr/sbin/sshd >/dev/null || (apt-get update && apt-get install -y openssh-server)
	@$(RTSP_CHECK) 2>/dev/null || (apt-get update && apt-get install -y --no-install-recommends $(RTSP_DEBS))
	@$(PY) -m pytest -q tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'make test: pytest collected no tests' >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) runs *.egg-info
