"""ASGI entry point: Channels serves `/v1/*` (the inference API) with its consumers, Django the rest."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from gateway.asgi_urls import urlpatterns as gateway_urlpatterns  # noqa: E402
from gateway.cache.embedding import warm_up as embedding_warm_up  # noqa: E402
from gateway.tokens import warm_up  # noqa: E402

# Load the tokenizers and the cache's embedding model now (~0.3 s + ~0.5 s) rather than in the first request.
warm_up()
embedding_warm_up()

application = ProtocolTypeRouter(
    {
        # Channels' URLRouter takes ASGI apps; django-stubs types re_path for views only.
        "http": URLRouter([*gateway_urlpatterns, re_path(r"", django_asgi_app)]),  # type: ignore[arg-type]
    }
)
