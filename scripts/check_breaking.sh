#!/usr/bin/env bash
# `buf breaking` for the swarmd.v1 protos against the baseline commit recorded
# in protos/BREAKING_BASELINE (see that file for how to move it). Works in a
# clone or a git worktree; needs the baseline commit in the repository's history.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${BUF:-.venv/bin/buf}
baseline=$(grep -v '^[[:space:]]*#' protos/BREAKING_BASELINE | tr -d '[:space:]')
if [[ $baseline == pending ]]; then
  # The commit that makes an intended breaking change says so; the next one
  # records that commit's id as the new baseline.
  echo "buf breaking skipped: protos/BREAKING_BASELINE is 'pending' (an intended breaking change);" >&2
  echo "commit, then set it to that commit's full id" >&2
  exit 0
fi
if ! [[ $baseline =~ ^[0-9a-f]{40}$ ]]; then
  echo "protos/BREAKING_BASELINE must hold one full commit id, not '$baseline'" >&2
  exit 1
fi
if ! git cat-file -e "$baseline^{commit}" 2>/dev/null; then
  echo "the baseline commit $baseline (protos/BREAKING_BASELINE) is not in this repository's history;" >&2
  echo "a shallow clone? fetch the full history, or set the baseline to the last commit that changed protos/" >&2
  exit 1
fi
gitdir=$(git rev-parse --path-format=absolute --git-common-dir)
"$BUF" breaking protos --against "$gitdir#ref=$baseline,subdir=protos"
echo "buf breaking: protos/ is compatible with $baseline"
