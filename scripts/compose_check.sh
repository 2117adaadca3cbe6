#!/usr/bin/env bash
# Validate compose.yaml (and its TLS overlay) against the current Compose specification with dclint
# (installed locally from npm into .tools/, works offline once installed).
set -euo pipefail
cd "$(dirname "$0")/.."
DCLINT_VERSION=3.1.0
TOOLS=.tools/dclint
if [ ! -x "$TOOLS/node_modules/.bin/dclint" ]; then
  mkdir -p "$TOOLS"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS" "dclint@${DCLINT_VERSION}" >/dev/null
fi
"$TOOLS/node_modules/.bin/dclint" compose.yaml compose.tls.yaml
echo "compose.yaml and compose.tls.yaml are valid"
