#!/usr/bin/env bash
# Build a real kube-apiserver, kube-controller-manager and kube-scheduler from Debian's
# source package `kubernetes` into a cache directory outside the repository, keyed by
# version, so a machine builds them once (about 9 minutes on 2 cores) and later runs start
# in seconds. The Kubernetes executor's tests run against these binaries and etcd.
#
# Prints the cache directory on stdout; it holds:
#   bin/kube-apiserver  bin/kube-controller-manager  bin/kube-scheduler
#   bin/etcd            a link to Debian's etcd-server binary
#
# The source is fetched with a deb-src list derived from the machine's own Debian entries,
# through a private apt state and sources directory: the system's apt configuration is
# never edited.
#
# Environment: SWARMD_CACHE_DIR (default ~/.cache/swarmd), KUBE_BUILD_JOBS (default nproc).
set -euo pipefail

KUBERNETES_VERSION=1.20.5+really1.20.2
SRC_VERSION_PREFIX=1.20.5+really1.20.2-
cache_root=${SWARMD_CACHE_DIR:-$HOME/.cache/swarmd}
dir="$cache_root/kubernetes-$KUBERNETES_VERSION"

if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi

need=()
for tool in go:golang-go etcd:etcd-server jq:jq rsync:rsync dpkg-source:dpkg-dev openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
  "${sudo[@]}" apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

mkdir -p "$cache_root"
# Build in a scratch directory next to the final one and move it into place at the end,
# so an interrupted build never leaves a half-made cache that looks complete.
tmp="$dir.partial.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/apt/sources.list.d" "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial" \
  "$tmp/src" "$tmp/bin"

# deb-src twins of the machine's Debian entries (deb822 .sources files and one-line lists).
python3 - "$tmp/apt/sources.list.d/debian-src.sources" <<'PY'
import glob, re, sys
stanzas = []
for path in glob.glob("/etc/apt/sources.list.d/*.sources"):
    for block in re.split(r"\n\s*\n", open(path).read()):
        fields = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
        if "deb" in fields.get("Types", "").split() and "debian" in fields.get("URIs", ""):
            fields["Types"] = "deb-src"
            stanzas.append("\n".join(f"{k}: {v}" for k, v in fields.items()))
for path in ["/etc/apt/sources.list", *glob.glob("/etc/apt/sources.list.d/*.list")]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        parts = line.split()
        if parts and parts[0] == "deb" and "debian" in line:
            opts = ""
            rest = parts[1:]
            if rest and rest[0].startswith("["):
                opts = rest[0].strip("[]")
                rest = rest[1:]
            uri, suite, *components = rest
            stanza = [f"Types: deb-src", f"URIs: {uri}", f"Suites: {suite}",
                      f"Components: {' '.join(components)}"]
            if opts.startswith("signed-by="):
                stanza.append(f"Signed-By: {opts.split('=', 1)[1]}")
            stanzas.append("\n".join(stanza))
if not stanzas:
    sys.exit("no Debian apt source entry found to derive a deb-src entry from")
open(sys.argv[1], "w").write("\n\n".join(stanzas) + "\n")
PY

apt_opts=(
  -o "Dir::Etc::sourcelist=/dev/null"
  -o "Dir::Etc::sourceparts=$tmp/apt/sources.list.d"
  -o "Dir::State::Lists=$tmp/apt/lists"
  -o "Dir::Cache=$tmp/apt/cache"
  -o "Dir::Cache::pkgcache="
  -o "Dir::Cache::srcpkgcache="
  -o "APT::Sandbox::User=root"
)
echo "fetching the kubernetes source package" >&2
apt-get "${apt_opts[@]}" update >&2
version=$(apt-cache "${apt_opts[@]}" showsrc kubernetes | awk '/^Version:/ {print $2}' \
  | grep -F "$SRC_VERSION_PREFIX" | head -n 1)
if [ -z "$version" ]; then
  echo "no kubernetes source package $KUBERNETES_VERSION in the derived deb-src entries" >&2
  exit 1
fi
(cd "$tmp/src" && apt-get "${apt_opts[@]}" source --download-only "kubernetes=$version" >&2)
(cd "$tmp/src" && dpkg-source --no-check -x kubernetes_*.dsc tree >&2)

echo "building kube-apiserver, kube-controller-manager, kube-scheduler (about 9 min on 2 cores)" >&2
cd "$tmp/src/tree"
# The layout debian/rules uses: the tree as k8s.io/kubernetes in a private GOPATH.
mkdir -p .go/src/k8s.io
ln -sfn ../../.. .go/src/k8s.io/kubernetes
export GOPATH="$PWD/.go" CGO_ENABLED=0 GOPROXY=off
export GOCACHE="$tmp/gocache" GOMAXPROCS=${KUBE_BUILD_JOBS:-$(nproc)}
export KUBE_GIT_VERSION="v1.20.2" KUBE_GIT_TREE_STATE=clean
cd .go/src/k8s.io/kubernetes
make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler" >&2
for b in kube-apiserver kube-controller-manager kube-scheduler; do
  cp "$(find _output -type f -name "$b" -perm -u+x | head -n 1)" "$tmp/bin/$b"
done
cd "$tmp"
ln -s "$(command -v etcd)" "$tmp/bin/etcd"
"$tmp/bin/kube-apiserver" --version >&2
# Keep only the binaries: the source tree and build cache are several gigabytes.
rm -rf "$tmp/src" "$tmp/gocache" "$tmp/apt"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
touch "$dir/.complete"
echo "$dir"
