"""What the CLI's commands share, light to import: the address variable, the
settings file and the model given on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

import grpc

from swarmd.clients.errors import SwarmdClientError
from swarmd.services.config import Settings, load_settings
from swarmd.services.errors import SwarmdError

__all__ = ["ADDRESS_ENV", "model_spec", "settings_of"]

#: Where the CLI finds a running orchestrator when ``--orchestrator`` is not given.
ADDRESS_ENV = "SWARMD_ADDRESS"


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings of ``--config`` (or ``$SWARMD_CONFIG``); INVALID_ARGUMENT when unreadable."""
    try:
        return load_settings(getattr(args, "config", None))
    except SwarmdError as exc:
        raise SwarmdClientError(grpc.StatusCode.INVALID_ARGUMENT, exc.message) from None


def model_spec(spec: str) -> str:
    """A model string from the command line; a replay cassette's path made absolute
    so every service finds it."""
    if spec.startswith("replay/"):
        path = Path(spec.removeprefix("replay/"))
        if not path.is_absolute():
            return f"replay/{path.resolve()}"
    return spec
