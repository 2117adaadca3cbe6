#!/usr/bin/env bash
# Generates bearer tokens and the files swarmd's services read to authenticate
# their callers (compose.tls.yaml, trying it out):
#   scripts/gen_tokens.sh DIR [TENANT]
# writes DIR/tokens.yaml (the SHA-256 of each token with its subject, role and
# tenant; no token in plain text), DIR/service.token (what the services present
# to each other), DIR/client.token (a client of TENANT, default "default"),
# DIR/admin.token and DIR/subagent.key (the key the orchestrator signs
# per-attempt subagent tokens with, and every service verifies them with).
# `swarmd auth-token new` makes one more entry at a time.
set -euo pipefail
dir=${1:?usage: gen_tokens.sh DIR [TENANT]}
tenant=${2:-default}
mkdir -p "$dir"
cd "$dir"
umask 077

new_token() { printf 'swarmd_%s' "$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"; }
sha() { printf '%s' "$1" | openssl dgst -sha256 -r | cut -d' ' -f1; }

service=$(new_token); client=$(new_token); admin=$(new_token)
printf '%s\n' "$service" > service.token
printf '%s\n' "$client" > client.token
printf '%s\n' "$admin" > admin.token
openssl rand -base64 48 | tr -d '\n' > subagent.key
cat > tokens.yaml <<YAML
tokens:
  - sha256: $(sha "$service")
    subject: swarmd-services
    role: service
  - sha256: $(sha "$client")
    subject: client-$tenant
    role: client
    tenant: $tenant
  - sha256: $(sha "$admin")
    subject: admin
    role: admin
YAML
chmod 644 tokens.yaml
echo "tokens in $(pwd): tokens.yaml service.token client.token admin.token subagent.key"
