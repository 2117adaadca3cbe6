"""Who is calling: the :class:`Identity` every authenticated call carries.

The server interceptor (:mod:`.interceptor`) sets it for the duration of
the call; servicers read it with :func:`current_identity` (None when the
service runs without authentication, which means: no tenant checks).
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

__all__ = ["ADMIN", "CLIENT", "ROLES", "SERVICE", "SUBAGENT", "Identity", "current_identity", "use_identity"]

#: Submits, reads, cancels and resumes its own tenant's swarms.
CLIENT = "client"
#: Everything, every tenant.
ADMIN = "admin"
#: swarmd's own processes: the internal RPCs.
SERVICE = "service"
#: One attempt of one subtask: the internal calls an executor makes for it.
SUBAGENT = "subagent"
ROLES = frozenset({CLIENT, ADMIN, SERVICE, SUBAGENT})


@dataclass(frozen=True)
class Identity:
    """An authenticated caller."""

    #: Who (token subject, JWT ``sub``, certificate name).
    subject: str
    #: One of :data:`ROLES`.
    role: str
    #: Tenant whose swarms the caller sees (clients and subagents).
    tenant: str = ""
    #: Where the identity came from: ``token``, ``jwt``, ``mtls``, ``mesh``, ``subagent``.
    source: str = ""
    #: The swarm a subagent token is scoped to.
    swarm_id: str = ""
    #: The subtask a subagent token is scoped to.
    subtask_id: str = ""

    @property
    def sees_all_tenants(self) -> bool:
        """Admins and swarmd's own services are not confined to one tenant."""
        return self.role in (ADMIN, SERVICE)


_CURRENT: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("swarmd_identity", default=None)


def current_identity() -> Identity | None:
    """The caller of the RPC being served; None without authentication."""
    return _CURRENT.get()


def use_identity(identity: Identity | None) -> contextvars.Token[Identity | None]:
    """Make ``identity`` the current one (the interceptor does this per call)."""
    return _CURRENT.set(identity)
