"""swarmd's Agent Card, served at ``/.well-known/agent-card.json``.

Two skills (a coding task decomposed by the model, or an explicit plan),
text and JSON input (the task; a plan or run settings as a data part),
text, diff and JSON output (answers, patches, statistics), streaming, the
JSON-RPC and HTTP+JSON bindings, and a bearer security scheme when the
gateway authenticates (and an OpenID Connect one for an OIDC issuer's JWTs).
"""

from __future__ import annotations

from importlib import metadata

from a2a.types import a2a_pb2
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, TransportProtocol

from swarmd.services.auth.oidc import discovery_url

__all__ = ["BEARER_SCHEME", "JSONRPC_PATH", "OIDC_SCHEME", "REST_PATH", "agent_card"]

JSONRPC_PATH = "/"
REST_PATH = "/rest"
BEARER_SCHEME = "bearer"
OIDC_SCHEME = "oidc"
INPUT_MODES = ["text/plain", "application/json"]
OUTPUT_MODES = ["text/plain", "text/x-diff", "application/json"]


def _version() -> str:
    try:
        return metadata.version("swarmd")
    except metadata.PackageNotFoundError:
        return "0"


def agent_card(
    base_url: str, repositories: list[str], *, bearer: bool = False, openid_issuer: str = ""
) -> a2a_pb2.AgentCard:
    """The card of a gateway reachable at ``base_url`` (no trailing slash)
    that works on ``repositories``; ``bearer`` when requests need a token,
    ``openid_issuer`` when its JWTs come from that OIDC issuer (declared as
    a second scheme: either one is enough)."""
    base_url = base_url.rstrip("/")
    repos = ", ".join(repositories) or "none configured"
    common = (
        f" Name the repository in the metadata key 'repository' (one of: {repos})."
        " Settings (data part or metadata): strategy, max_subagents (1..100), max_steps (1..200),"
        " timeout_secs (30..3600), parallel_enabled, model."
    )
    card = a2a_pb2.AgentCard(
        name="swarmd",
        description=(
            "Runs a swarm of AI coding sub-agents in parallel on one task in a git repository: each"
            " sub-agent works in its own worktree, and its work is committed and merged back."
        ),
        version=_version(),
        supported_interfaces=[
            a2a_pb2.AgentInterface(
                url=base_url + JSONRPC_PATH.rstrip("/"), protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_CURRENT,
            ),
            a2a_pb2.AgentInterface(
                url=base_url + REST_PATH, protocol_binding=TransportProtocol.HTTP_JSON.value,
                protocol_version=PROTOCOL_VERSION_CURRENT,
            ),
        ],
        capabilities=a2a_pb2.AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=INPUT_MODES,
        default_output_modes=OUTPUT_MODES,
        skills=[
            a2a_pb2.AgentSkill(
                id="coding-task",
                name="Coding task by decomposition",
                description=(
                    "A coding task in plain text: the model splits it into subtasks that run in"
                    " parallel once their dependencies have succeeded." + common
                ),
                tags=["coding", "git", "parallel", "decomposition"],
                examples=["Add type hints to every module in src/ and make the tests pass"],
                input_modes=["text/plain", "application/json"],
                output_modes=OUTPUT_MODES,
            ),
            a2a_pb2.AgentSkill(
                id="coding-plan",
                name="Coding task by explicit plan",
                description=(
                    "An explicit plan as a data part, {\"subtasks\": [{\"id\", \"instruction\","
                    " \"dependencies\", \"read_only\", ...}]}, validated strictly and run as written."
                    + common
                ),
                tags=["coding", "git", "parallel", "plan"],
                examples=['{"subtasks": [{"id": "ops", "instruction": "Write src/calc/ops.py"}]}'],
                input_modes=["application/json"],
                output_modes=OUTPUT_MODES,
            ),
        ],
    )
    if bearer:
        card.security_schemes[BEARER_SCHEME].http_auth_security_scheme.CopyFrom(
            a2a_pb2.HTTPAuthSecurityScheme(
                scheme="Bearer", bearer_format="JWT" if openid_issuer else "",
                description="a swarmd token (client or admin role) or a token configured on the gateway",
            )
        )
        card.security_requirements.append(a2a_pb2.SecurityRequirement(schemes={BEARER_SCHEME: a2a_pb2.StringList()}))
    if bearer and openid_issuer:
        card.security_schemes[OIDC_SCHEME].open_id_connect_security_scheme.CopyFrom(
            a2a_pb2.OpenIdConnectSecurityScheme(
                open_id_connect_url=discovery_url(openid_issuer), description="ID or access tokens of this issuer",
            )
        )
        card.security_requirements.append(a2a_pb2.SecurityRequirement(schemes={OIDC_SCHEME: a2a_pb2.StringList()}))
    return card
