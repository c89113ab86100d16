"""Run localstripe, the offline Stripe fake for dev and tests, with its state where we choose.

localstripe pickles its whole store to the fixed path /tmp/localstripe.pickle after every write, so two
instances (`make run` and a test run, or two test runs) would overwrite each other's state. This launcher
points the store at `--state PATH` instead, or keeps it in memory only (`--no-persist`, for tests), then
serves localstripe's own aiohttp application on `--host` (default 127.0.0.1: it accepts any `sk_` key).

localstripe is GPLv3 and never a dependency of Gatehouse: it lives in its own virtualenv, whose python
runs this file (scripts/localstripe.sh sets it up):

    .data/localstripe/bin/python scripts/localstripe_serve.py --port 8420 [--state PATH | --no-persist]
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path(__file__).resolve().parent.parent / ".data" / "localstripe-run" / "state.pickle"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run localstripe with its state in a file of our choice.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--from-scratch", action="store_true", help="start empty; the state file is replaced")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"default: {DEFAULT_STATE}")
    where.add_argument("--no-persist", action="store_true", help="keep the state in memory only")
    return parser.parse_args(argv)


def redirect_state(store_class: Any, state: Path | None) -> None:
    """Replace the store's load and dump methods: `state` instead of /tmp, or nothing when None."""

    def load(store: dict[str, object]) -> None:
        if state is None or not state.exists():
            return
        with state.open("rb") as f:
            saved = pickle.load(f)  # noqa: S301 -- our own file, written by dump() below
        store.clear()
        store.update(saved)

    def dump(store: dict[str, object]) -> None:
        if state is None:
            return
        state.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a server killed mid-write leaves the previous state, not a truncated one.
        partial = state.with_name(state.name + ".partial")
        with partial.open("wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(state)

    store_class.try_load_from_disk = load
    store_class.dump_to_disk = dump


def main() -> None:
    args = parse_args()
    # Imported here: the package exists only in localstripe's own virtualenv, not in ours (nor for mypy).
    from aiohttp import web  # type: ignore[import-not-found,unused-ignore]
    from localstripe import resources, server  # type: ignore[import-not-found]

    redirect_state(resources.Store, None if args.no_persist else args.state)
    if not args.from_scratch:
        resources.store.try_load_from_disk()
    # localstripe's own start() binds every interface ('::'); serve its app ourselves to bind one host.
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    web.run_app(server.app, host=args.host, port=args.port, shutdown_timeout=2.0)


if __name__ == "__main__":
    main()
