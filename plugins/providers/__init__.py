"""swarmd's built-in model providers.

* :mod:`~swarmd.plugins.providers.openai` - any OpenAI-compatible Chat
  Completions endpoint (entry point ``openai``);
* :mod:`~swarmd.plugins.providers.replay` - plays JSONL cassettes (entry
  point ``replay``);
* :mod:`~swarmd.plugins.providers.recording` - record mode, a wrapper that
  writes cassettes;
* :mod:`~swarmd.plugins.providers.factory` - :func:`create_provider`, the one
  way swarmd turns ``provider/model`` into a provider instance;
* :mod:`~swarmd.plugins.providers.wire` - the OpenAI wire format they share.
"""

from __future__ import annotations

from swarmd.plugins.providers.factory import UnknownProviderError, create_provider

__all__ = ["UnknownProviderError", "create_provider"]
