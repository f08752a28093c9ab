"""The example pipelines stay valid YAML whose perf-gate command lines the real parser accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from perf_gate.__main__ import parser

from tests.support.env import ROOT

EXAMPLES = ROOT / "tools" / "perf-gate" / "examples"


def _commands(path: Path) -> list[list[str]]:
    """Every perf-gate invocation in the file's shell steps, as argv after the program name."""
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    scripts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script") and isinstance(value, str):
                    scripts.append(value)
                elif key == "script" and isinstance(value, list):
                    scripts.extend(v for v in value if isinstance(v, str))
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    found = []
    for script in scripts:
        joined = re.sub(r"\\\n\s*", " ", script)
        for line in joined.splitlines():
            if "perf-gate " in line and not line.lstrip().startswith(("pip ", "#")):
                words = shlex.split(line)
                start = next(i for i, w in enumerate(words) if w.endswith("perf-gate"))
                found.append(words[start + 1:])
    return found


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_example_commands_parse(name: str) -> None:
    """Each example runs the A/B with the large model on CUDA and a live check, with options that exist."""
    commands = _commands(EXAMPLES / name)
    modes = [c[0] for c in commands]
    assert sorted(modes) == ["ab", "live"]
    for argv in commands:
        args = parser().parse_args(argv)
        assert args.slo_class == "gpu-large"
        if args.mode == "ab":
            assert args.device == "cuda" and "large" in args.model
            assert args.baseline == "auto" and args.confirm


def test_readme_links_the_examples() -> None:
    """The top-level README and the tool's README point at both example files."""
    for readme in (ROOT / "README.md", ROOT / "tools" / "perf-gate" / "README.md"):
        text = readme.read_text(encoding="utf-8")
        assert "examples/github-actions.yml" in text and "examples/gitlab-ci.yml" in text, readme
