"""perf_gate.builds: source strings, read-only git export, the started process's environment, docker argv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from perf_gate.builds import (
    BuildOptions,
    ImageBuild,
    ProcessBuild,
    RefBuild,
    UrlBuild,
    make_build,
    parse_source,
)
from perf_gate.errors import CouldNotMeasure

from tests.unit.perf_gate.conftest import Repo


@pytest.mark.parametrize(("source", "expected"), [
    ("path:.", ("path", ".")),
    ("ref:origin/main", ("ref", "origin/main")),
    ("url:http://canary:8000", ("url", "http://canary:8000")),
    ("http://127.0.0.1:8000", ("url", "http://127.0.0.1:8000")),
    ("image:ofa-ve:1.2", ("image", "ofa-ve:1.2")),
])
def test_sources_parse(source: str, expected: tuple[str, str]) -> None:
    """KIND:VALUE, and a bare URL, name the four kinds of build."""
    assert parse_source(source) == expected


@pytest.mark.parametrize("source", ["main", "ref:", "branch:main", ""])
def test_bad_sources_are_refused(source: str) -> None:
    """Anything else is a ValueError listing the kinds."""
    with pytest.raises(ValueError, match="path:"):
        parse_source(source)


def test_ref_build_exports_the_commit_without_touching_the_repository(git_repo: Repo, tmp_path: Path) -> None:
    """ref: resolves to a commit and writes only that commit's service source, leaving git state alone."""
    options = BuildOptions(workdir=tmp_path / "work", repo=git_repo.path)
    worktrees_before = sorted((git_repo.path / ".git").glob("worktrees/*"))
    build = RefBuild("baseline", f"ref:{git_repo.first[:8]}", git_repo.first[:8], options, {})
    assert build.commit == git_repo.first
    build.prepare()
    exported = build.tree / "services" / "ofa-ve" / "src" / "ofa_ve" / "__init__.py"
    assert exported.read_text() == "VERSION = 1\n"
    assert not (build.tree / "README.md").exists()
    assert sorted((git_repo.path / ".git").glob("worktrees/*")) == worktrees_before
    assert "VERSION = 2" in (git_repo.path / "services/ofa-ve/src/ofa_ve/__init__.py").read_text()


def test_unknown_ref_could_not_be_measured(git_repo: Repo, tmp_path: Path) -> None:
    """A ref the clone lacks (shallow clone, typo) is exit 2 material, naming the ref."""
    with pytest.raises(CouldNotMeasure, match="no-such-branch"):
        make_build("baseline", "ref:no-such-branch", BuildOptions(workdir=tmp_path, repo=git_repo.path))


def test_process_build_puts_its_tree_first_on_pythonpath(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The build's own service source wins over any ofa_ve on the inherited PYTHONPATH or in the venv."""
    monkeypatch.setenv("PYTHONPATH", "/elsewhere/src")
    options = BuildOptions(workdir=tmp_path, env={"OFA_VE_TORCH_THREADS": "1", "OFA_VE_MAX_BATCH_SIZE": "8"})
    build = ProcessBuild("candidate", "path:/tree", Path("/tree"), options, {"OFA_VE_MAX_BATCH_SIZE": "1"})
    env = build.command_env(1234)
    assert env["PYTHONPATH"].split(os.pathsep) == ["/tree/services/ofa-ve/src", "/elsewhere/src"]
    assert env["OFA_VE_PORT"] == "1234" and env["OFA_VE_HOST"] == "127.0.0.1"
    assert env["OFA_VE_MAX_BATCH_SIZE"] == "1"  # the role's own setting beats the shared one
    assert env["OFA_VE_TORCH_THREADS"] == "1"


def test_process_build_without_service_source_is_not_measurable(tmp_path: Path) -> None:
    """path: at a directory without services/ofa-ve/src/ofa_ve fails before anything starts."""
    build = make_build("candidate", f"path:{tmp_path}", BuildOptions(workdir=tmp_path / "w"))
    with pytest.raises(CouldNotMeasure, match="no services/ofa-ve/src/ofa_ve"):
        build.start()


def test_image_build_runs_on_a_loopback_port_with_env_and_extra_args(tmp_path: Path) -> None:
    """docker run publishes 8000 on 127.0.0.1 only, passes the env and the caller's extra arguments."""
    options = BuildOptions(workdir=tmp_path, env={"OFA_VE_LOG_LEVEL": "WARNING"},
                           docker_args=("--gpus=all", "-v", "ofa-models:/models"))
    build = make_build("candidate", "image:ofa-ve:pr-42", options, {"OFA_VE_FP16": "true"})
    assert isinstance(build, ImageBuild)
    assert build.run_command() == [
        "docker", "run", "-d", "--rm", "-p", "127.0.0.1::8000",
        "-e", "OFA_VE_FP16=true", "-e", "OFA_VE_LOG_LEVEL=WARNING",
        "--gpus=all", "-v", "ofa-models:/models", "ofa-ve:pr-42",
    ]


def test_url_build_cannot_take_settings(tmp_path: Path) -> None:
    """A running service's settings are not ours to change: env for a url: build is an error."""
    assert isinstance(make_build("baseline", "url:http://x:1/", BuildOptions(workdir=tmp_path)), UrlBuild)
    with pytest.raises(ValueError, match="running service"):
        make_build("baseline", "url:http://x:1", BuildOptions(workdir=tmp_path), {"OFA_VE_X": "1"})
