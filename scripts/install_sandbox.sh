#!/usr/bin/env bash
# Installs bubblewrap (bwrap), which confines the bash tool's commands
# (swarmd.plugins.sandbox), and checks that it can create namespaces here.
# Without it swarmd still runs, with bash unconfined and a warning event.
# STRICT=1 (as .ci/run sets it) makes a missing or unusable sandbox an error.
set -euo pipefail

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing bubblewrap" >&2
    apt-get install -y --no-install-recommends bubblewrap >/dev/null 2>&1 \
      || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends bubblewrap >/dev/null; }
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
    sudo -n apt-get install -y --no-install-recommends bubblewrap >/dev/null
  fi
fi

if ! command -v bwrap >/dev/null 2>&1; then
  echo "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap);" \
       "the bash tool will run unconfined" >&2
  [ "${STRICT:-0}" = 1 ] && exit 1
  exit 0
fi
if ! bwrap --ro-bind / / --proc /proc --dev /dev --unshare-pid --unshare-net --cap-drop ALL --die-with-parent true 2>/tmp/swarmd-bwrap-probe.$$; then
  echo "bwrap cannot create namespaces here: $(cat /tmp/swarmd-bwrap-probe.$$); the bash tool will run unconfined" >&2
  rm -f /tmp/swarmd-bwrap-probe.$$
  [ "${STRICT:-0}" = 1 ] && exit 1
  exit 0
fi
rm -f /tmp/swarmd-bwrap-probe.$$
echo "bash sandbox: $(bwrap --version) works here"
