"""Resource health of a sub-agent's pod, for the collapse controller.

:func:`pod_health` scores a pod's status (a dict as the API server serves it)
in [0, 1] and counts the infrastructure signals it shows, which the
controller adds to the branch's invariant breaks:

* no pod, or no status yet: 0.2, one signal;
* a container OOMKilled: 0.0, three signals;
* an image that cannot be pulled (``ErrImagePull``, ``ImagePullBackOff``):
  0.0, three signals;
* a container in ``CrashLoopBackOff``: 0.1, two signals;
* phase Failed: 0.1, two signals;
* otherwise 1.0, minus 0.2 when a container is not ready (unless the pod
  succeeded), minus 0.3 and one signal when a container waits or ended with a
  reason (other than ``Completed``, or ``ContainerCreating`` and
  ``PodInitializing`` while it starts), minus 0.2 per restart (at most
  three) and one signal when a container restarted; at least 0.

Reasons are read from every container's (and init container's) current and
last state and from the pod's own ``status.reason``, compared case-blind.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PodHealth", "pod_health"]

_STARTING = frozenset({"containercreating", "podinitializing"})
_BENIGN = frozenset({"completed"}) | _STARTING
_IMAGE = frozenset({"errimagepull", "imagepullbackoff"})


@dataclass(frozen=True)
class PodHealth:
    """A pod's resource health: its score, its signals and why."""

    score: float
    signals: int
    detail: str


def _containers(status: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainerStatuses", "containerStatuses"):
        yield from status.get(key) or []


def _reasons(status: Mapping[str, Any]) -> list[str]:
    reasons = [str(status["reason"])] if status.get("reason") else []
    for container in _containers(status):
        for key in ("state", "lastState"):
            for detail in (container.get(key) or {}).values():
                if isinstance(detail, Mapping) and detail.get("reason"):
                    reasons.append(str(detail["reason"]))
    return reasons


def pod_health(pod: Mapping[str, Any] | None) -> PodHealth:
    """Score ``pod`` (see the module docstring)."""
    status = (pod or {}).get("status") or {}
    if not status:
        return PodHealth(0.2, 1, "the pod has no status yet")
    reasons = _reasons(status)
    lowered = {r.lower() for r in reasons}
    phase = str(status.get("phase") or "")
    if "oomkilled" in lowered:
        return PodHealth(0.0, 3, "a container was OOMKilled")
    if lowered & _IMAGE:
        return PodHealth(0.0, 3, f"the image cannot be pulled ({', '.join(sorted(r for r in reasons if r.lower() in _IMAGE))})")
    if "crashloopbackoff" in lowered:
        return PodHealth(0.1, 2, "a container is in CrashLoopBackOff")
    if phase.lower() == "failed":
        return PodHealth(0.1, 2, f"the pod failed{': ' + reasons[0] if reasons else ''}")
    score, signals, why = 1.0, 0, []
    containers = list(status.get("containerStatuses") or [])
    if phase.lower() != "succeeded" and (not containers or any(not c.get("ready") for c in containers)):
        score -= 0.2
        why.append("not ready")
    odd = [r for r in reasons if r.lower() not in _BENIGN]
    if odd:
        score -= 0.3
        signals += 1
        why.append(f"reason {odd[0]}")
    restarts = sum(int(c.get("restartCount") or 0) for c in _containers(status))
    if restarts > 0:
        score -= 0.2 * min(restarts, 3)
        signals += 1
        why.append(f"{restarts} restart(s)")
    return PodHealth(max(0.0, min(1.0, score)), signals, f"pod {phase or 'phase unknown'}" + (f": {', '.join(why)}" if why else ""))
