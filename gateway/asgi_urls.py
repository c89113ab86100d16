"""HTTP routes that Channels serves itself (the inference API); everything else goes to Django."""

from __future__ import annotations

from django.urls import path, re_path

from gateway.api.chat import ChatCompletionsConsumer
from gateway.api.models import ModelsConsumer
from gateway.api.prometheus import MetricsConsumer
from gateway.consumers import NotFoundConsumer

urlpatterns = [
    path("v1/chat/completions", ChatCompletionsConsumer.as_asgi()),
    path("v1/models", ModelsConsumer.as_asgi()),
    re_path(r"^v1/models/(?P<model_id>.+)$", ModelsConsumer.as_asgi()),
    re_path(r"^v1(/|$)", NotFoundConsumer.as_asgi()),
    path("metrics", MetricsConsumer.as_asgi()),
]
