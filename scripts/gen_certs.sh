#!/usr/bin/env bash
# Generates a private CA and certificates for swarmd's services and a client,
# for TLS and mutual TLS (compose.tls.yaml, tests, trying it out):
#   scripts/gen_certs.sh DIR [NAME...]
# writes DIR/ca.pem (+ ca-key.pem), DIR/server.pem + server-key.pem (valid for
# localhost, 127.0.0.1 and every NAME, e.g. the compose service names) and
# DIR/client.pem + client-key.pem (CN=swarmd-client). Keys are EC P-256, valid
# 825 days. Production deployments use their own CA (cert-manager, a mesh).
set -euo pipefail
dir=${1:?usage: gen_certs.sh DIR [NAME...]}
shift
mkdir -p "$dir"
cd "$dir"
san="DNS:localhost,IP:127.0.0.1"
for name in "$@"; do san="$san,DNS:$name"; done

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

key ca-key.pem
openssl req -x509 -new -key ca-key.pem -sha256 -days 825 -subj "/CN=swarmd test CA $(date +%s%N)" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem

sign() {  # sign NAME SUBJECT EXTENSIONS
  key "$1-key.pem"
  openssl req -new -key "$1-key.pem" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 -sha256 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
sign server "/CN=swarmd" "subjectAltName=$san
extendedKeyUsage=serverAuth,clientAuth"
sign client "/CN=swarmd-client" "subjectAltName=DNS:swarmd-client
extendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 600 ./*-key.pem
echo "certificates in $(pwd): ca.pem server.pem server-key.pem client.pem client-key.pem"
