"""ASGI entry point: Channels routes `/v1/*` to the gateway consumers, everything else to Django."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Channels' URLRouter takes ASGI apps; django-stubs types re_path for views only.
        "http": URLRouter([re_path(r"", django_asgi_app)]),  # type: ignore[arg-type]
    }
)
