"""The one error type of the conformance kit."""

from __future__ import annotations

__all__ = ["ContractViolation"]


class ContractViolation(AssertionError):
    """A plugin broke a rule of its base class's contract.

    ``rule`` is the rule's short name (e.g. ``"one-result"``), also the start
    of the message, so a failing test says which rule was broken.
    """

    def __init__(self, plugin: object, rule: str, detail: str) -> None:
        name = getattr(plugin, "name", "") or getattr(plugin, "__qualname__", type(plugin).__qualname__)
        super().__init__(f"[{rule}] {name}: {detail}")
        self.rule = rule
