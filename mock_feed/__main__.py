"""Command line: `python -m mock_feed generate …` and `python -m mock_feed serve …` (docs/contract.md §2)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from mock_feed.generate import generate_dataset
from mock_feed.server import FaultOptions, serve
from mock_feed.timeline import NotATimeline, generate_timeline, is_timeline, view


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mock_feed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write a dataset directory, or with --from/--to a timeline")
    gen.add_argument("--out", required=True, type=Path)
    gen.add_argument("--as-of", type=dt.date.fromisoformat, help="the dataset of this day")
    gen.add_argument("--from", dest="start", type=dt.date.fromisoformat, help="a timeline from this day …")
    gen.add_argument(
        "--to", dest="end", type=dt.date.fromisoformat, help="… to this day (mock_feed/timeline.py)"
    )
    gen.add_argument("--institutions", type=int, default=200)
    gen.add_argument("--seed", type=int, default=2022)
    gen.add_argument(
        "--candidates-scale",
        type=float,
        default=1.0,
        help="multiply candidates per plan (benchmarks: more certificates per institution)",
    )

    srv = sub.add_parser("serve", help="serve a dataset directory over HTTP")
    srv.add_argument("--data", required=True, type=Path)
    srv.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="a timeline: serve it as it stood on this day"
    )
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8765)
    srv.add_argument("--token", default=None)
    srv.add_argument("--fail-rate", type=float, default=0.0)
    srv.add_argument("--rate-limit", type=float, default=0.0)
    srv.add_argument("--latency-ms", type=int, default=0)
    srv.add_argument("--malformed-rate", type=float, default=0.0)
    srv.add_argument("--duplicate-rate", type=float, default=0.0)
    srv.add_argument("--fault-seed", type=int, default=0)
    cut = sub.add_parser("view", help="write the dataset directory of one day of a timeline")
    cut.add_argument("--data", required=True, type=Path, help="the timeline")
    cut.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
    cut.add_argument("--out", required=True, type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    if args.command == "generate":
        return _generate(parser, args)
    if args.command == "view":
        return _view(args)
    if is_timeline(args.data) != (args.as_of is not None):
        print(f"error: --as-of goes with a timeline, and a timeline needs it ({args.data})", file=sys.stderr)
        return 2
    if not (args.data / "institutions.jsonl").exists():
        print(f"error: {args.data} is not a dataset directory (no institutions.jsonl)", file=sys.stderr)
        return 2
    faults = FaultOptions(
        args.fail_rate,
        args.rate_limit,
        args.latency_ms,
        args.malformed_rate,
        args.duplicate_rate,
        args.fault_seed,
    )
    serve(args.data, args.host, args.port, args.token, faults, as_of=args.as_of)
    return 0


def _view(args: argparse.Namespace) -> int:
    try:
        _print_counts(view(args.data, args.as_of, args.out))
    except NotATimeline as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"the dataset of {args.as_of} cut from {args.data} into {args.out}")
    return 0


def _print_counts(counts: dict[str, int]) -> None:
    for name, n in counts.items():
        print(f"{n:>10,}  {name}")


def _generate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if (args.start is None) != (args.end is None) or (args.as_of is None) == (args.start is None):
        parser.error("generate needs either --as-of, or --from and --to")
    if args.as_of is not None:
        _print_counts(
            generate_dataset(args.out, args.as_of, args.institutions, args.seed, args.candidates_scale)
        )
        print(f"dataset for {args.as_of} written to {args.out}")
        return 0
    _print_counts(generate_timeline(args.out, args.start, args.end, args.institutions, args.seed))
    print(f"timeline {args.start} … {args.end} written to {args.out} (versions per file above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
