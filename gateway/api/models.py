"""GET /v1/models and /v1/models/{id}: the models this key may use, plus the routing aliases."""

from __future__ import annotations

import orjson

from gateway.api.errors import ApiError
from gateway.consumers import GatewayConsumer
from gateway.routing import ALIASES, model_allowed
from gateway.state import hot_state

CREATED = 1_700_000_000  # catalogue entries have no public creation date; a fixed one keeps clients happy


def _entry(model_id: str, owner: str) -> dict[str, object]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": owner}


class ModelsConsumer(GatewayConsumer):
    methods = ("GET",)

    async def respond(self, raw: bytes) -> None:
        principal = await self.authenticate()
        catalogue = await hot_state().models()
        entries = [_entry(m.name, m.provider) for m in catalogue.values() if principal.can_call(m)]
        entries += [_entry(alias, "gatehouse") for alias in ALIASES]
        visible = [e for e in entries if model_allowed(str(e["id"]), principal.allowed_models)]
        wanted = self.scope["url_route"]["kwargs"].get("model_id")
        if wanted is None:
            body = orjson.dumps({"object": "list", "data": visible})
        else:
            match = next((e for e in visible if e["id"] == wanted), None)
            if match is None:
                raise ApiError(
                    404,
                    f"The model `{wanted}` does not exist or you do not have access to it.",
                    param="model",
                    code="model_not_found",
                )
            body = orjson.dumps(match)
        await self.start(200, self.base_headers())
        await self.finish(body)
