"""Tenant isolation: a caller sees only its own tenant's swarms.

The orchestrator records the submitting caller's tenant on the swarm
(``Swarm.tenant``) and asks :func:`may_see` before it answers any RPC about
one swarm; a swarm of another tenant is answered exactly like an unknown
one (NOT_FOUND, the same message), so nobody learns that it exists.
Listings are confined with :func:`listing_tenant`, and the result cache is
one cache per tenant (:func:`tenant_cache_key`). Admins and swarmd's own
services see every tenant; without authentication there are no tenants.
"""

from __future__ import annotations

import hashlib
import re

from swarmd.services.auth.identity import current_identity

__all__ = ["caller_tenant", "confined", "listing_tenant", "may_see", "tenant_cache_key"]

_HEX_KEY = re.compile(r"[0-9a-fA-F]{1,128}")


def caller_tenant() -> str:
    """The tenant a swarm submitted now belongs to (empty without authentication)."""
    identity = current_identity()
    return identity.tenant if identity is not None else ""


def confined() -> bool:
    """Whether the current caller is confined to one tenant."""
    identity = current_identity()
    return identity is not None and not identity.sees_all_tenants


def listing_tenant() -> str:
    """The tenant a listing is confined to; empty: every tenant."""
    identity = current_identity()
    if identity is None or identity.sees_all_tenants:
        return ""
    return identity.tenant


def may_see(swarm_tenant: str) -> bool:
    """Whether the current caller may learn of a swarm of ``swarm_tenant``."""
    identity = current_identity()
    return identity is None or identity.sees_all_tenants or identity.tenant == swarm_tenant


def tenant_cache_key(key: str) -> str:
    """The key a cache entry is stored under for the current caller.

    A caller confined to a tenant (a sub-agent) reads and writes its tenant's
    entries only: the key is hashed with the tenant, so the same subtask in
    two tenants never shares a result. Others use the key as given (a key
    that is not hex is left for the store to refuse).
    """
    identity = current_identity()
    if identity is None or identity.sees_all_tenants or not _HEX_KEY.fullmatch(key):
        return key
    return hashlib.sha256(f"{identity.tenant}\x00{key.lower()}".encode()).hexdigest()
