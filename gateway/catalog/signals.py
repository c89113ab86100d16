"""Catalogue edits reach every web process's cached snapshot at once."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from gateway.invalidation import invalidate_publish


def catalogue_changed(sender: Any, **kwargs: Any) -> None:
    transaction.on_commit(lambda: invalidate_publish("catalog"))
