"""Generate the Python code for protos/swarmd/v1 with the pinned grpcio-tools.

    python scripts/gen_protos.py protos          # regenerate in place
    python scripts/gen_protos.py --check protos  # fail when committed code is stale
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(proto_root: Path, out: Path) -> None:
    protos = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "swarmd" / "v1").glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("proto_root", type=Path)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    ns = parser.parse_args()
    target = ns.proto_root / "swarmd" / "v1"
    if not ns.check:
        generate(ns.proto_root, ns.proto_root)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(ns.proto_root, Path(tmp))
        fresh = Path(tmp) / "swarmd" / "v1"
        stale = []
        names = {p.name for p in fresh.iterdir()} | {
            p.name for p in target.iterdir() if p.name.endswith(GENERATED_SUFFIXES)
        }
        for name in sorted(names):
            a, b = fresh / name, target / name
            if not a.exists() or not b.exists() or not filecmp.cmp(a, b, shallow=False):
                stale.append(name)
        if stale:
            print("generated code is stale; run `make protos`:", *stale, sep="\n  ", file=sys.stderr)
            return 1
    print("generated code is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
