"""Command line: `perf-gate ab | record | live`. Markdown on stdout, progress on stderr, JSON to --json.

Exit status: 0 no regression (and the SLO met), 1 regression or SLO breach, 2 could not measure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
import tempfile
from pathlib import Path

from perf_gate import EXIT_NOT_MEASURED
from perf_gate.baseline import ENV_REF
from perf_gate.builds import SERVICE_SRC, BuildOptions
from perf_gate.gate import RunConfig, run_ab, run_live, run_record
from perf_gate.report import GateResult, markdown, to_json_text


class _Elapsed(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"[perf-gate {record.relativeCreated / 1000:6.1f}s] {record.getMessage()}"


def _env_pairs(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", help="bundled profile name or a YAML file")
    p.add_argument("--rounds", type=int, help="rounds per build (default: the profile's)")
    p.add_argument("--slo-class", default="auto",
                   help="SLO class of the profile; auto = gpu-large on cuda, cpu-tiny on cpu; none = skip")
    p.add_argument("--tiny-model", type=Path, metavar="DIR",
                   help="build (if missing) and serve the tiny random model from DIR on the CPU")
    p.add_argument("--model", help="OFA_VE_MODEL of started builds (hub id or directory)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="OFA_VE_DEVICE of started builds")
    p.add_argument("--env", action="append", metavar="KEY=VALUE", help="environment of both started builds")
    p.add_argument("--repo", type=Path, default=Path("."), help="git checkout that ref: sources come from")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs `python -m ofa_ve`")
    p.add_argument("--service-src", default=SERVICE_SRC, help="where a tree keeps the service's source")
    p.add_argument("--start-timeout", type=float, default=600.0, help="seconds for a build to become ready")
    p.add_argument("--docker", default="docker", help="docker client for image: sources")
    p.add_argument("--docker-arg", action="append", default=[], metavar="ARG",
                   help="extra `docker run` argument for image: sources, e.g. --docker-arg=--gpus=all")
    p.add_argument("--workdir", type=Path, help="logs and exported trees (default: a temporary directory)")
    _output_arguments(p)


def _output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", type=Path, metavar="FILE", help="write the full result as JSON")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown summary to FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="perf-gate", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    ab = sub.add_parser("ab", help="before merge: candidate against baseline, interleaved rounds")
    ab.add_argument("--baseline", default="auto",
                    help="path:DIR | ref:REF | url:URL | image:IMG | stored:FILE | auto (default): "
                         f"${ENV_REF}, else the commit in --baseline-file, else its numbers")
    ab.add_argument("--candidate", default="path:.", help="build source (default path:., the working tree)")
    ab.add_argument("--baseline-file", type=Path, help="stored baseline (perf-gate record), for auto")
    ab.add_argument("--confirm", action="store_true",
                    help="on a failure, run again with fresh processes; fail only on what fails in both runs")
    ab.add_argument("--baseline-env", action="append", metavar="KEY=VALUE",
                    help="environment of the baseline only")
    ab.add_argument("--candidate-env", action="append", metavar="KEY=VALUE",
                    help="environment of the candidate only (e.g. OFA_VE_MAX_BATCH_SIZE=1)")
    _build_arguments(ab)
    rec = sub.add_parser("record", help="measure one build and write the stored baseline file")
    rec.add_argument("--build", default="path:.", help="build source (default path:.)")
    rec.add_argument("--out", type=Path, required=True, help="baseline file to write")
    rec.add_argument("--commit", help="commit the numbers stand for (default: the ref's, or HEAD)")
    _build_arguments(rec)
    live = sub.add_parser("live", help="after deploy: the SLO class's limits from Prometheus recording rules")
    live.add_argument("--prometheus-url", required=True, help="Prometheus or VictoriaMetrics base URL")
    live.add_argument("--slo-class", required=True, help="SLO class of the profile, e.g. gpu-large")
    live.add_argument("--selector", default='service="ofa-ve"', help="label matchers of the replicas judged")
    live.add_argument("--window", default="30m", help="how far back from --at (a Prometheus duration)")
    live.add_argument("--at", help="end of the window: unix seconds or ISO 8601 (default: now)")
    live.add_argument("--bearer-token-file", type=Path, help="file holding a bearer token for the query API")
    live.add_argument("--profile", default="default", help="bundled profile name or a YAML file")
    _output_arguments(live)
    return ap


def _at(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        stamp = dt.datetime.fromisoformat(value)
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()


def _config(args: argparse.Namespace, workdir: Path) -> RunConfig:
    env = _env_pairs(args.env)
    if args.model:
        env["OFA_VE_MODEL"] = args.model
    if args.device:
        env["OFA_VE_DEVICE"] = args.device
    options = BuildOptions(workdir=workdir, repo=args.repo, python=args.python, service_src=args.service_src,
                           env=env, start_timeout_s=args.start_timeout, docker=args.docker,
                           docker_args=tuple(args.docker_arg))
    roles = {"baseline": _env_pairs(getattr(args, "baseline_env", None)),
             "candidate": _env_pairs(getattr(args, "candidate_env", None))}
    return RunConfig(options=options, profile=args.profile, rounds=args.rounds, slo_class=args.slo_class,
                     tiny_model=args.tiny_model, env=roles, confirm=getattr(args, "confirm", False))


def run(args: argparse.Namespace) -> GateResult:
    if args.mode == "live":
        token = args.bearer_token_file.read_text().strip() if args.bearer_token_file else None
        return run_live(args.profile, args.slo_class, args.prometheus_url, args.selector, args.window,
                        _at(args.at), token)
    with tempfile.TemporaryDirectory(prefix="perf-gate-") as tmp:
        workdir = args.workdir or Path(tmp)
        config = _config(args, workdir)
        if args.mode == "record":
            return run_record(config, args.build, args.out, args.commit)
        return run_ab(config, args.baseline, args.candidate, args.baseline_file)


def _terminate(signum: int, frame: object) -> None:
    # CI cancels with SIGTERM: unwind, so the builds this run started are stopped on the way out.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Progress goes to perf_gate's own logger (the root logger and its httpx chatter stay untouched).
    logger = logging.getLogger("perf_gate")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Elapsed())
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if args.quiet else logging.INFO)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(args)
    finally:
        signal.signal(signal.SIGTERM, previous)
        logger.removeHandler(handler)


def _main(args: argparse.Namespace) -> int:
    try:
        result = run(args)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        sys.stderr.write(f"perf-gate: {exc}\n")
        return EXIT_NOT_MEASURED
    text = markdown(result)
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(to_json_text(result), encoding="utf-8")
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
