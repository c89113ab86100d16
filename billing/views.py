"""The Stripe webhook endpoint (public host): `POST /stripe/webhook`."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing.webhooks import WebhookRejectedError, webhook_receive

logger = logging.getLogger(__name__)

MAX_BODY = 1_000_000  # Stripe's events are far smaller


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    """200 once an event is recorded (or was already); 400 if it is not a verified Stripe event."""
    body = request.body
    if len(body) > MAX_BODY:
        return JsonResponse({"error": "body too large"}, status=400)
    try:
        outcome = webhook_receive(body, request.headers.get("Stripe-Signature", ""))
    except WebhookRejectedError as error:
        logger.warning("stripe webhook refused: %s", error)
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse({"received": True, "id": outcome.event_id, "outcome": outcome.outcome})
