"""Which role may call which RPC: the one table, keyed by full method name.

:data:`POLICY` maps every RPC of swarmd's services to a :class:`Rule`: the
roles allowed and, for the ``subagent`` role, the request fields that must
name the token's own swarm (and subtask). ``admin`` may call everything.
A method missing from the table is refused to everyone but admins, so a
new RPC is closed until it is listed (a test checks that every RPC of the
service descriptors is). When an RPC moves to another service, move its
row.

Health checking and reflection are listed for every role; the interceptor
skips them altogether unless ``auth.authenticate_health`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarmd.services.auth.identity import ADMIN, CLIENT, ROLES, SERVICE, SUBAGENT, Identity
from swarmd.services.errors import PermissionDenied

__all__ = ["EXEMPT_PREFIXES", "POLICY", "Rule", "authorize"]


@dataclass(frozen=True)
class Rule:
    """Who may call one method."""

    #: Roles allowed besides admin.
    roles: frozenset[str]
    #: Request field that must equal a subagent token's swarm id.
    swarm_field: str = ""
    #: Request field (a dotted path) that, when set, must equal a subagent token's subtask id.
    subtask_field: str = ""
    #: The swarm field may also name a scope under the swarm's (``<swarm id>/…``).
    under_swarm: bool = False


def _rule(*roles: str, swarm: str = "", subtask: str = "", under: bool = False) -> Rule:
    return Rule(frozenset(roles), swarm, subtask, under)


_ORCH = "/swarmd.v1.OrchestratorService/"
_COORD = "/swarmd.v1.CoordinatorService/"
_EXEC = "/swarmd.v1.ExecutorService/"
_STORE = "/swarmd.v1.ResultStoreService/"
_PUBLIC = _rule(CLIENT)
_INTERNAL = _rule(SERVICE)
#: The calls a sub-agent's runtime makes for its own subtask.
_ATTEMPT = _rule(SERVICE, SUBAGENT, swarm="swarm_id", subtask="subtask_id")
#: Shared results of the sub-agent's own swarm (``scope`` is the swarm id, or
#: a scope under it such as a pod's relay, ``<swarm id>/pod/<name>``).
_SHARED = _rule(SERVICE, SUBAGENT, swarm="scope", under=True)
#: Content-addressed rows (cache entries, blobs) a runtime reads and writes.
_CONTENT = _rule(SERVICE, SUBAGENT)
#: An executor that forwards its attempt to another one (the remote plugin)
#: does so under the attempt's subagent token.
_FORWARDED = _rule(SERVICE, SUBAGENT, swarm="swarm_id", subtask="subtask_id")

POLICY: dict[str, Rule] = {
    _ORCH + "SubmitSwarm": _PUBLIC,
    _ORCH + "GetSwarm": _PUBLIC,
    _ORCH + "ListSwarms": _PUBLIC,
    _ORCH + "GetSubTask": _PUBLIC,
    _ORCH + "ListSubTasks": _PUBLIC,
    _ORCH + "WatchSwarm": _PUBLIC,
    _ORCH + "CancelSwarm": _rule(CLIENT, SERVICE),  # an orchestrator forwards a cancel to the swarm's owner
    _ORCH + "CancelSubTask": _rule(CLIENT, SERVICE),
    _ORCH + "ResumeSwarm": _PUBLIC,
    _COORD + "AcquirePermit": _ATTEMPT,
    _COORD + "ReportOutcome": _ATTEMPT,
    _COORD + "ReserveBudget": _ATTEMPT,
    _COORD + "ClaimVariant": _ATTEMPT,
    _EXEC + "ExecuteSubTask": _rule(SERVICE, SUBAGENT, swarm="swarm_id", subtask="subtask.id"),
    _EXEC + "AttachSubTask": _FORWARDED,
    _EXEC + "CancelSubTask": _FORWARDED,
    _EXEC + "Describe": _CONTENT,  # capacity only; a forwarded attempt probes its executor with it
    _EXEC + "CheckModel": _INTERNAL,
    _EXEC + "SampleBranch": _INTERNAL,
    _STORE + "PublishResult": _SHARED,
    _STORE + "GetResult": _SHARED,
    _STORE + "QueryResults": _SHARED,
    _STORE + "ListResults": _SHARED,
    _STORE + "WaitForResult": _SHARED,
    _STORE + "CacheGet": _CONTENT,
    _STORE + "CachePut": _CONTENT,
    _STORE + "GetCacheStats": _INTERNAL,
    _STORE + "ClearCache": _INTERNAL,
    _STORE + "SaveSwarmState": _INTERNAL,
    _STORE + "SaveSubTaskState": _INTERNAL,
    _STORE + "LoadSwarmState": _INTERNAL,
    _STORE + "ListSwarmStates": _INTERNAL,
    _STORE + "AppendEvents": _INTERNAL,
    _STORE + "ReadEvents": _INTERNAL,
    _STORE + "AppendAuditRecord": _INTERNAL,
    _STORE + "ListAuditRecords": _INTERNAL,
    _STORE + "PutBlob": _CONTENT,
    _STORE + "GetBlob": _CONTENT,
    "/grpc.health.v1.Health/Check": _rule(*ROLES),
    "/grpc.health.v1.Health/Watch": _rule(*ROLES),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": _rule(*ROLES),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": _rule(*ROLES),
}

#: Methods served without credentials unless ``auth.authenticate_health`` is set.
EXEMPT_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


def _field(request: Any, path: str) -> str:
    """The value at a dotted field path (``subtask.id``); '' for no path."""
    value = request
    for name in path.split(".") if path else ():
        value = getattr(value, name)
    return str(value) if path else ""


def authorize(identity: Identity, method: str, request: Any = None) -> None:
    """Raise :class:`PermissionDenied` unless ``identity`` may call ``method``
    with ``request`` (None for request streams: no field can be checked)."""
    if identity.role == ADMIN:
        return
    rule = POLICY.get(method)
    if rule is None or identity.role not in rule.roles:
        raise PermissionDenied(f"{identity.role} {identity.subject!r} may not call {method}", reason="PERMISSION_DENIED")
    if identity.role != SUBAGENT or not (rule.swarm_field or rule.subtask_field):
        return
    if not hasattr(request, "DESCRIPTOR"):
        if request is None:
            raise PermissionDenied(f"a subagent token cannot be checked against {method}'s request stream")
        return  # a request that did not parse: the malformed-request guard answers it
    swarm = _field(request, rule.swarm_field)
    if rule.under_swarm and swarm.startswith(identity.swarm_id + "/"):
        swarm = swarm.split("/", 1)[0]
    if rule.swarm_field and swarm != identity.swarm_id:
        raise PermissionDenied(f"this subagent token is not valid for swarm {swarm!r}")
    wanted = _field(request, rule.subtask_field)
    if wanted and wanted != identity.subtask_id:
        raise PermissionDenied(f"this subagent token is not valid for subtask {wanted!r}")
