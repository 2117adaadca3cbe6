"""The CLI's credentials (--token, --token-file, SWARMD_TOKEN, SWARMD_TOKEN_FILE,
client.token_file in --config) against services that authenticate, and
``swarmd auth-token``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from fakes.auth_world import make_world, serve_with_auth, token_of
from fakes.swarm_services import fast_config, plan, subtask

from swarmd.clients.client import SwarmdClient
from swarmd.services.auth.tokens import TokenFile, hash_token

pytestmark = pytest.mark.timeout(120)

SWARMD = str(Path(sys.executable).with_name("swarmd"))


async def swarmd(*args: str, env: dict[str, str] | None = None, stdin: bytes = b"") -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SWARMD_TOKEN") and k != "SWARMD_CONFIG"}
    proc = await asyncio.create_subprocess_exec(
        SWARMD, *args, env={**clean, **(env or {})},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_every_way_of_giving_the_cli_a_token(tmp_path: Path) -> None:
    world = make_world(tmp_path / "auth")
    alice_file = tmp_path / "alice.token"
    alice_file.write_text(token_of("alice") + "\n")
    config = tmp_path / "client.yaml"
    config.write_text(yaml.safe_dump({"client": {"token_file": str(alice_file)}}))
    async with serve_with_auth(world, tmp_path) as services:
        address = services.orchestrator_address
        async with SwarmdClient(address, token=token_of("alice")) as alice:
            reply = await alice.submit(task="t", plan=plan(subtask("only")), config=fast_config())
            await alice.wait(reply.swarm.id)
        status = ("status", reply.swarm.id, "--orchestrator", address)
        ways = {
            "--token": ((*status, "--token", token_of("alice")), {}),
            "--token-file": ((*status, "--token-file", str(alice_file)), {}),
            "SWARMD_TOKEN": (status, {"SWARMD_TOKEN": token_of("alice")}),
            "SWARMD_TOKEN_FILE": (status, {"SWARMD_TOKEN_FILE": str(alice_file)}),
            "config": ((*status, "--config", str(config)), {}),
        }
        for way, (args, env) in ways.items():
            code, out, err = await swarmd(*args, env=env)
            assert code == 0 and reply.swarm.id in out, (way, out, err)

        code, _, err = await swarmd(*status)
        assert code == 3 and "UNAUTHENTICATED" in err, err
        code, _, err = await swarmd(*status, "--token", token_of("bob"))
        assert code == 2 and "NOT_FOUND" in err and "unknown swarm" in err, err
        code, _, err = await swarmd(*status, "--token-file", str(tmp_path / "missing"))
        assert code == 2 and "cannot read the token file" in err, err


async def test_auth_token_makes_entries_a_token_file_accepts(tmp_path: Path) -> None:
    code, out, err = await swarmd("auth-token", "new", "--subject", "ci", "--tenant", "acme")
    assert code == 0, err
    token = err.rsplit(" ", 1)[-1].strip()
    [entry] = yaml.safe_load(out)
    assert entry == {"sha256": hash_token(token), "subject": "ci", "role": "client", "tenant": "acme"}
    assert token not in out
    path = tmp_path / "tokens.yaml"
    path.write_text(out)
    found = TokenFile(path).lookup(token)
    assert found is not None and found.tenant == "acme"

    code, out, err = await swarmd("auth-token", "hash", "--subject", "orchestrator", "--role", "service",
                                  stdin=b"the-service-token\n")
    assert code == 0, err
    assert yaml.safe_load(out)[0]["sha256"] == hash_token("the-service-token")
    code, _, err = await swarmd("auth-token", "new", "--subject", "nobody")
    assert code == 2 and "needs a tenant" in err and "token (give it" not in err
