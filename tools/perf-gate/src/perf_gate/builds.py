"""The two things compared: builds of the service, started here or already running, reached over HTTP only.

A source is written `KIND:VALUE`:

- `path:DIR`   the service source in checkout DIR (`path:.` = the working tree), run as `python -m ofa_ve`
- `ref:REF`    the service source at git REF, exported with `git archive` (read-only: no worktree is
               registered, nothing in the repository changes), run the same way from the one venv
- `tree:ID`    the service source whose git tree id is ID (what a baseline file records next to the
               commit: the same content has the same tree id after a squash or rebase merge)
- `url:URL`    a service somebody else started (a canary, a compose stack); nothing is started or stopped
- `image:IMG`  `docker run` of an ofa-ve image on a loopback port (extra `docker run` arguments, such as
               `--gpus=all`, through --docker-arg)

Started builds read their Python packages from the one venv; only `ofa_ve` itself comes from the
build's tree, put first on PYTHONPATH.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import subprocess
import tarfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from perf_gate.errors import CouldNotMeasure

log = logging.getLogger(__name__)

SERVICE_SRC = "services/ofa-ve/src"
KINDS = ("path", "ref", "tree", "url", "image")


@dataclass(frozen=True)
class BuildOptions:
    """How started builds run: shared by baseline and candidate, apart from their own extra env."""

    workdir: Path
    repo: Path = Path(".")
    python: str = "python3"
    service_src: str = SERVICE_SRC
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 600.0
    docker: str = "docker"
    docker_args: tuple[str, ...] = ()


def parse_source(source: str) -> tuple[str, str]:
    """(kind, value) of a build source; a bare http(s) URL is a `url:`."""
    if source.startswith(("http://", "https://")):
        return "url", source
    kind, sep, value = source.partition(":")
    if not sep or kind not in KINDS or not value:
        raise ValueError(f"build source {source!r}: expected one of {', '.join(k + ':...' for k in KINDS)}")
    return kind, value


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Build(ABC):
    """A running service the gate can send requests to."""

    def __init__(self, role: str, source: str) -> None:
        self.role = role
        self.source = source
        self.url = ""
        self.detail = source  # what the source resolved to (commit, directory, container)

    @abstractmethod
    def start(self) -> None:
        """Begins starting the build; returns without waiting for it to be ready."""

    def check_alive(self) -> None:  # noqa: B027 - nothing to check for a service we did not start
        """Raises CouldNotMeasure when the build has gone away."""

    def stop(self) -> None:  # noqa: B027 - nothing to stop for a service we did not start
        """Stops what start() started."""

    def log_tail(self) -> str:
        return ""

    def wait_ready(self, timeout_s: float) -> None:
        """Polls /readyz until 200; CouldNotMeasure when the build dies or the time is up."""
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                reply = httpx.get(f"{self.url}/readyz", timeout=5)
                if reply.status_code == 200:
                    return
                last = f"/readyz {reply.status_code}: {reply.text[:300]}"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
        raise CouldNotMeasure(f"{self.role} ({self.detail}) not ready within {timeout_s:g} s: {last}",
                              self.log_tail())

    def describe(self) -> dict[str, str]:
        return {"role": self.role, "source": self.source, "detail": self.detail, "url": self.url}


class ProcessBuild(Build):
    """`python -m ofa_ve` with the service source from `tree`, on a free loopback port."""

    def __init__(self, role: str, source: str, tree: Path, options: BuildOptions,
                 env: dict[str, str]) -> None:
        super().__init__(role, source)
        self.tree = tree
        self.options = options
        self.extra_env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = options.workdir / f"{role}.log"

    def command_env(self, port: int) -> dict[str, str]:
        src = (self.tree / self.options.service_src).resolve()
        inherited = os.environ.get("PYTHONPATH", "")
        return {
            **os.environ,
            **self.options.env,
            **self.extra_env,
            "OFA_VE_HOST": "127.0.0.1",
            "OFA_VE_PORT": str(port),
            "PYTHONPATH": f"{src}{os.pathsep}{inherited}" if inherited else str(src),
        }

    def prepare(self) -> None:
        """Makes `tree` hold the service source (nothing to do for a directory)."""
        if not (self.tree / self.options.service_src / "ofa_ve").is_dir():
            raise CouldNotMeasure(f"{self.role}: no {self.options.service_src}/ofa_ve under {self.tree}")

    def start(self) -> None:
        self.prepare()
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.options.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:  # a --confirm run appends to the first run's log
            # Own working directory: `python -m` puts it first on sys.path.
            self.proc = subprocess.Popen([self.options.python, "-m", "ofa_ve"], stdout=out,
                                         stderr=subprocess.STDOUT, env=self.command_env(port),
                                         cwd=self.options.workdir)
        log.info("%s: started %s (pid %d) on %s", self.role, self.detail, self.proc.pid, self.url)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise CouldNotMeasure(f"{self.role} ({self.detail}) exited with code {self.proc.returncode}",
                                  self.log_tail())

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


class RefBuild(ProcessBuild):
    """A git ref's service source, exported read-only into the work directory."""

    def __init__(self, role: str, source: str, ref: str, options: BuildOptions, env: dict[str, str]) -> None:
        super().__init__(role, source, options.workdir / f"{role}-tree", options, env)
        self.ref = ref
        self.commit = resolve_commit(options.repo, ref)
        self.detail = f"{ref} = {self.commit[:12]}"

    def prepare(self) -> None:
        export_tree(self.options.repo, self.commit, self.options.service_src, self.tree)
        super().prepare()

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "commit": self.commit}


class TreeBuild(ProcessBuild):
    """The service source with a given git tree id, exported read-only into the work directory."""

    def __init__(self, role: str, source: str, tree_id: str, options: BuildOptions,
                 env: dict[str, str]) -> None:
        super().__init__(role, source, options.workdir / f"{role}-tree", options, env)
        self.tree_id = resolve_object(options.repo, tree_id, "tree")
        self.detail = f"service tree {self.tree_id[:12]}"

    def prepare(self) -> None:
        export_tree(self.options.repo, self.tree_id, self.options.service_src, self.tree, tree=True)
        super().prepare()


def service_tree(repo: Path, commit: str, service_src: str = SERVICE_SRC) -> str | None:
    """The tree id of the service source at `commit`, or None when git cannot say."""
    cmd = ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{commit}:{service_src}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def resolve_object(repo: Path, name: str, kind: str) -> str:
    """The full id of the `kind` (commit, tree) `name` names in `repo`; CouldNotMeasure when there is none."""
    proc = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{name}^{{{kind}}}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CouldNotMeasure(f"git {kind} {name!r} not found in {repo} (a shallow clone? fetch it first)")
    return proc.stdout.strip()


def resolve_commit(repo: Path, ref: str) -> str:
    """The full commit id `ref` names in `repo`; CouldNotMeasure when git cannot resolve it."""
    return resolve_object(repo, ref, "commit")


def export_tree(repo: Path, commit: str, subdir: str, dest: Path, *, tree: bool = False) -> None:
    """Writes `subdir` of `commit` under `dest` with `git archive` (reads objects only). With `tree`,
    `commit` is the id of the subdir's own tree, written under `subdir` all the same."""
    where = [f"--prefix={subdir.rstrip('/')}/", commit] if tree else [commit, "--", subdir]
    proc = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", *where],
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise CouldNotMeasure(f"git archive {commit[:12]} {subdir} failed: "
                              f"{proc.stderr.decode(errors='replace').strip()[:500]}")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(dest, filter="data")


class UrlBuild(Build):
    """A service that is already running; the gate neither starts nor stops it."""

    def __init__(self, role: str, source: str, url: str) -> None:
        super().__init__(role, source)
        self.url = url.rstrip("/")
        self.detail = self.url

    def start(self) -> None:
        log.info("%s: using the running service at %s", self.role, self.url)


class ImageBuild(Build):
    """`docker run -d` of an image with the container's port 8000 published on a loopback port."""

    def __init__(self, role: str, source: str, image: str, options: BuildOptions,
                 env: dict[str, str]) -> None:
        super().__init__(role, source)
        self.image = image
        self.options = options
        self.env = {**options.env, **env}
        self.container = ""
        self.detail = image

    def run_command(self) -> list[str]:
        cmd = [self.options.docker, "run", "-d", "--rm", "-p", "127.0.0.1::8000"]
        for key, value in sorted(self.env.items()):
            cmd += ["-e", f"{key}={value}"]
        return [*cmd, *self.options.docker_args, self.image]

    def _docker(self, *args: str) -> str:
        proc = subprocess.run([self.options.docker, *args], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CouldNotMeasure(f"{self.role}: docker {args[0]} failed: {proc.stderr.strip()[:500]}")
        return proc.stdout.strip()

    def start(self) -> None:
        proc = subprocess.run(self.run_command(), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CouldNotMeasure(f"{self.role}: docker run {self.image} failed: {proc.stderr.strip()[:500]}")
        self.container = proc.stdout.strip()
        mapped = self._docker("port", self.container, "8000/tcp").splitlines()[0]
        self.url = f"http://{mapped}"
        self.detail = f"{self.image} (container {self.container[:12]})"
        log.info("%s: started %s on %s", self.role, self.detail, self.url)

    def check_alive(self) -> None:
        if self.container and self._docker("inspect", "-f", "{{.State.Running}}", self.container) != "true":
            raise CouldNotMeasure(f"{self.role} container {self.container[:12]} stopped", self.log_tail())

    def log_tail(self) -> str:
        if not self.container:
            return ""
        proc = subprocess.run([self.options.docker, "logs", "--tail", "40", self.container],
                              capture_output=True, text=True, check=False)
        return (proc.stdout + proc.stderr)[-3000:]

    def stop(self) -> None:
        if self.container:
            subprocess.run([self.options.docker, "stop", "-t", "10", self.container], capture_output=True,
                           check=False)


def make_build(role: str, source: str, options: BuildOptions, env: dict[str, str] | None = None) -> Build:
    """The Build a source string names (see the module docstring)."""
    kind, value = parse_source(source)
    env = env or {}
    if kind == "path":
        build: Build = ProcessBuild(role, source, Path(value), options, env)
        build.detail = str(Path(value).resolve())
        return build
    if kind == "ref":
        return RefBuild(role, source, value, options, env)
    if kind == "tree":
        return TreeBuild(role, source, value, options, env)
    if kind == "image":
        return ImageBuild(role, source, value, options, env)
    if env:
        raise ValueError(f"{role}: environment settings cannot apply to a running service ({source})")
    return UrlBuild(role, source, value)
