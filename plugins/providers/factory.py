"""Creating a model provider from a ``provider/model`` string.

The orchestrator (decomposition, key ``"orchestrator"``) and the sub-agent
runtime (key = subtask id) both go through :func:`create_provider`, so record
mode and the replay keys work the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from swarmd.plugins.model import ModelProvider, PermanentProviderError, parse_model_string
from swarmd.plugins.providers.recording import RecordingProvider

__all__ = ["UnknownProviderError", "create_provider"]


class UnknownProviderError(PermanentProviderError, LookupError):
    """The model string names no loaded provider (or names none at all)."""


def create_provider(
    plugins: Any,
    model_spec: str,
    *,
    key: str,
    subtask_name: str = "",
    options: Mapping[str, str] | None = None,
    record_path: str | None = None,
    http_clients: Any = None,
) -> ModelProvider:
    """Instantiate the provider ``model_spec`` names.

    :param plugins: loaded plugins (:class:`swarmd.plugins.manager.Plugins`);
        only ``plugins.providers`` is used.
    :param model_spec: ``"provider/model"``, e.g. ``"openai/gpt-4o"`` or
        ``"replay/cassettes/demo.jsonl"``.
    :param key: who is calling: the subtask id, or ``"orchestrator"`` for
        decomposition. Passed to the provider as option ``subtask_id`` (the
        replay provider looks responses up by it) and used as the cassette
        key in record mode.
    :param subtask_name: passed as option ``subtask_name`` (replay falls back
        to it when the cassette has no lines for the id).
    :param options: provider options (``base_url``, ``api_key``, ``timeout``,
        ``key``...); they win over ``subtask_id``/``subtask_name``.
    :param record_path: when set, wrap the provider in a
        :class:`RecordingProvider` appending to this cassette.
    :param http_clients: a host's
        :class:`~swarmd.plugins.providers.http_clients.HttpClientPool`, set as
        the provider's ``http_clients`` (HTTP providers lease from it).
    :raises UnknownProviderError: no provider prefix, or an unknown one (the
        message lists the available providers).
    :raises PermanentProviderError: the provider rejected its options.
    """
    provider_name, model = parse_model_string(model_spec or "")
    registry = plugins.providers
    available = ", ".join(registry.names()) or "none"
    if not model_spec or not model_spec.strip():
        raise UnknownProviderError(f"no model given; write provider/model (available providers: {available})")
    if provider_name is None:
        raise UnknownProviderError(
            f"model {model_spec!r} names no provider; write provider/model, e.g. openai/{model} "
            f"(available providers: {available})"
        )
    if provider_name not in registry:
        raise UnknownProviderError(
            f"unknown model provider {provider_name!r} in model {model_spec!r} (available providers: {available})"
        )
    cls = registry.get(provider_name)
    merged = {"subtask_id": key, "subtask_name": subtask_name or "", **dict(options or {})}
    provider: ModelProvider = cls(model, merged)
    if http_clients is not None:
        provider.http_clients = http_clients
    if record_path:
        return RecordingProvider(provider, record_path, merged.get("key") or key)
    return provider
