"""Command line: `python -m mock_feed generate …` and `python -m mock_feed serve …` (docs/contract.md §2)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from mock_feed.generate import generate_dataset
from mock_feed.server import FaultOptions, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mock_feed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write a dataset directory")
    gen.add_argument("--out", required=True, type=Path)
    gen.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
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
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8765)
    srv.add_argument("--token", default=None)
    srv.add_argument("--fail-rate", type=float, default=0.0)
    srv.add_argument("--rate-limit", type=float, default=0.0)
    srv.add_argument("--latency-ms", type=int, default=0)
    srv.add_argument("--malformed-rate", type=float, default=0.0)
    srv.add_argument("--duplicate-rate", type=float, default=0.0)
    srv.add_argument("--fault-seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    if args.command == "generate":
        counts = generate_dataset(args.out, args.as_of, args.institutions, args.seed, args.candidates_scale)
        for name, n in counts.items():
            print(f"{n:>10,}  {name}")
        print(f"dataset for {args.as_of} written to {args.out}")
        return 0
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
    serve(args.data, args.host, args.port, args.token, faults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
