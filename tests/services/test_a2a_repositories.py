"""The repositories an A2A gateway offers: specifications, lookups, clones."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarmd.services.a2a.repositories import Repositories, RepositoryError


def test_paths_and_urls_are_told_apart(tmp_path: Path) -> None:
    repos = Repositories.parse(
        ["calc=" + str(tmp_path), "web=https://git.example.invalid/web.git", "ssh=git@host.invalid:team/x.git"],
        tmp_path / "ws",
    )
    assert repos.names == ["calc", "ssh", "web"]
    assert repos.resolve("calc").path == tmp_path and not repos.resolve("calc").url
    assert repos.resolve("web").path == (tmp_path / "ws" / "web").resolve()
    assert repos.resolve("ssh").url == "git@host.invalid:team/x.git"


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["calc"], "expected NAME=PATH"),
        (["=/tmp"], "expected NAME=PATH"),
        (["../x=/tmp"], "letters, digits"),
        (["a=/tmp", "a=/srv"], "configured twice"),
    ],
)
def test_bad_specifications_are_refused(specs: list[str], message: str) -> None:
    with pytest.raises(RepositoryError, match=message):
        Repositories.parse(specs)


def test_a_url_needs_a_workspace() -> None:
    with pytest.raises(RepositoryError, match="give a workspace"):
        Repositories.parse(["web=https://git.example.invalid/web.git"])


def test_unknown_and_missing_names_list_the_configured_ones(tmp_path: Path) -> None:
    repos = Repositories.parse([f"calc={tmp_path}"])
    with pytest.raises(RepositoryError, match=r"unknown repository 'x' \(configured: calc\)"):
        repos.resolve("x")
    with pytest.raises(RepositoryError, match="names no repository"):
        repos.resolve("")


async def test_prepare_refuses_a_missing_directory_and_a_failed_clone(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError, match="is not a directory"):
        await Repositories.parse([f"gone={tmp_path / 'nope'}"]).prepare()
    with pytest.raises(RepositoryError, match="cannot clone 'bad'"):
        await Repositories.parse([f"bad=file://{tmp_path / 'nope'}"], tmp_path / "ws").prepare()
