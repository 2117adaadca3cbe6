"""Maps the `swarmd` import namespace onto the design card's folder layout.

pyproject.toml holds all metadata; this file only computes the package list,
so a new subpackage under any root is picked up without editing a list:

    swarmd.v1        <- protos/swarmd/v1   (code generated from the .proto files)
    swarmd.services  <- services/          (the three gRPC servers)
    swarmd.plugins   <- plugins/           (hookspecs, executors, providers, tools)
    swarmd.clients   <- clients/           (client library, CLI, embedded launcher)

`swarmd` itself is an implicit namespace package.
"""

from setuptools import find_packages, setup

ROOTS = {
    "swarmd.v1": "protos/swarmd/v1",
    "swarmd.services": "services",
    "swarmd.plugins": "plugins",
    "swarmd.clients": "clients",
}

packages: list[str] = []
package_dir: dict[str, str] = {}
for name, path in ROOTS.items():
    package_dir[name] = path
    packages.append(name)
    packages.extend(f"{name}.{sub}" for sub in find_packages(path))

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"swarmd.v1": ["*.proto", "*.pyi"], "": ["py.typed", "*.json", "*.jsonl"]},
)
