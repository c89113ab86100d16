from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def tenant(request: HttpRequest) -> dict[str, object]:
    return {
        "tenant": getattr(request, "tenant", None),
        "membership": getattr(request, "membership", None),
        "public_url": settings.GATEHOUSE_PUBLIC_URL,
    }
