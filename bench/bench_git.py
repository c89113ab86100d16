"""Which code a bench measured: the commit and any uncommitted change, for its results file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def git_version() -> dict[str, Any]:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(  # noqa: S603
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, env=env
    )
    status = subprocess.run(  # noqa: S603
        [*git, "status", "--porcelain"], capture_output=True, text=True, check=True, env=env
    )
    return {"commit": commit.stdout.strip(), "uncommitted": status.stdout.splitlines()}
