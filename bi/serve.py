"""`make bi`: Superset on http://localhost:8088 over warehouse/published.duckdb (read-only), with the
dashboards imported, an admin login whose password is printed the first time (kept in .superset/), and a
demo login per supervising centre (centre_350100 …: that centre's rows only; centre_350000: the province,
every row), each with its password in .superset/<login>_password."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from pathlib import Path

import access
from local_superset import ADMIN, PROJECT_ROOT, server_command, set_up, superset_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warehouse", type=Path, default=PROJECT_ROOT / "warehouse")
    parser.add_argument("--state-dir", type=Path, default=PROJECT_ROOT / ".superset")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8088)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    published = args.warehouse.resolve() / "published.duckdb"
    created = set_up(args.state_dir.resolve(), published)
    url = f"http://{'localhost' if args.host == '127.0.0.1' else args.host}:{args.port}"
    print(f"\nSuperset: {url}  (dashboards over {published}, read-only)")
    if created:
        print(f"login: {ADMIN}  password: {created}")
        print(f"(shown this once; it is kept in {args.state_dir / 'admin_password'})")
    else:
        print(f"login: {ADMIN}  (password in {args.state_dir / 'admin_password'})")
    centres = access.read_centres()
    print(
        f"as a centre: {centres[0].login} (the province, every row) … {centres[-1].login}, one per centre "
        f"of the seed, password in {args.state_dir}/<login>_password"
    )
    print("Ctrl-C stops it.\n", flush=True)
    env = superset_env(args.state_dir.resolve())
    try:
        return subprocess.run(
            server_command(args.port, args.host), env=env, cwd=PROJECT_ROOT, check=False
        ).returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
