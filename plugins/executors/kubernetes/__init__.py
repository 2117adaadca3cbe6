"""The ``kubernetes`` executor plugin: sub-agents as pods on a Kubernetes cluster.

Select it with ``--executor kubernetes`` (or ``default_executor: kubernetes``)
and configure it with ``k8s_*`` options (:mod:`.settings`). Parts:

* :mod:`.executor` — the plugin: pod budget, pod lifecycle, outcomes, cancel;
* :mod:`.podspec` — pod names, labels and the manifest (why pods, not Jobs);
* :mod:`.kube` — API calls and the pod watch (resourceVersion, relist on 410);
* :mod:`.outcomes` — what a pod's state means (transient or permanent);
* :mod:`.transfer` — git bundles and the result store's blob RPCs;
* :mod:`.relay` — the pod's events and outcome through the result store;
* :mod:`.bringback` — merging a pod's commits like a local sub-agent's;
* :mod:`.agent` — what runs inside the pod (``swarmd agent run-subtask``).
"""

from __future__ import annotations

from typing import Any

from swarmd.plugins import hookimpl
from swarmd.plugins.executors.kubernetes.executor import KubernetesExecutor

__all__ = ["KubernetesExecutor", "swarmd_register_executors"]


@hookimpl
def swarmd_register_executors(registry: Any) -> None:
    registry.add(KubernetesExecutor)
