"""What the hot path knows without asking the database: API-key principals and the model catalogue.

Both are loaded on first use (in a worker thread) and then served from process memory. Changes reach every
web process through Redis pub/sub on `gh:invalidate` (a revoked key, a suspended tenant, a catalogue edit)
within milliseconds; a TTL bounds staleness if that channel is ever down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django_tenants.utils import schema_context

from billing.plans import plan_pricing_load
from config.redis import async_redis_client
from gateway.api.errors import ApiError
from gateway.cache.policy import CachePolicy, cache_policy_load
from gateway.credentials import credentials_plain, endpoint_is_byok
from gateway.invalidation import INVALIDATE_CHANNEL
from gateway.keys import ApiKeyError, api_key_authenticate, key_hash, key_parse
from gateway.limits.deny import deny_clear
from gateway.limits.policy import LimitSet, limit_set_load
from gateway.pii.policy import PiiPolicy, pii_policy_load
from gateway.pricing import PlanPricing
from gateway.routing import ModelInfo

log = logging.getLogger(__name__)

NEGATIVE_TTL = 5.0
RELOAD_RETRY_SECONDS = 5.0
MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a valid API key speaks for, with what the hot path needs about its tenant."""

    tenant_id: int
    tenant_slug: str
    schema: str
    tenant_active: bool
    key_prefix: str
    allowed_models: tuple[str, ...]
    expires_at: float | None  # epoch seconds
    pricing: PlanPricing
    chains: Mapping[str, list[str]]  # the tenant's overrides, merged over the defaults
    cache: CachePolicy
    pii: PiiPolicy = field(default_factory=PiiPolicy)
    limits: LimitSet = field(default_factory=LimitSet)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)  # endpoint -> tenant's own key
    plan_id: int = 0  # whose prices `pricing` holds: a plan edit drops the principals of its tenants

    def can_call(self, model: ModelInfo) -> bool:
        """Whether this tenant may use `model`: its endpoint has a deployment key, or the tenant's own key
        (`credentials` holds keys of BYOK endpoints only), or it is a keyless server that takes no tenant keys
        (e.g. vLLM: open to every tenant, priced from the catalogue). A BYOK endpoint without a deployment
        key serves only tenants with their own key."""
        endpoint = settings.GATEHOUSE_ENDPOINTS[model.endpoint]
        if endpoint.get("api_key") or model.endpoint in self.credentials:
            return True
        return not endpoint_is_byok(model.endpoint)


def _load_principal(raw_key: str) -> Principal:
    from gateway.models import FallbackChain

    close_old_connections()
    identity = api_key_authenticate(raw_key)
    tenant = identity.tenant
    with schema_context(tenant.schema_name):
        overrides = {c.task_type: list(c.model_names) for c in FallbackChain.objects.all()}
        cache = cache_policy_load()
        pii = pii_policy_load()
        limits = limit_set_load(tenant.plan, identity.api_key)
    expires = identity.api_key.expires_at
    return Principal(
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        schema=tenant.schema_name,
        tenant_active=tenant.is_active,
        key_prefix=identity.api_key.prefix,
        allowed_models=tuple(identity.api_key.allowed_models),
        expires_at=expires.timestamp() if expires else None,
        pricing=plan_pricing_load(tenant.plan),
        plan_id=tenant.plan_id,
        chains={**settings.GATEHOUSE_DEFAULT_CHAINS, **overrides},
        cache=cache,
        pii=pii,
        limits=limits,
        credentials=credentials_plain(tenant.schema_name),
    )


def _load_catalogue() -> dict[str, ModelInfo]:
    from gateway.catalog.models import CatalogModel

    close_old_connections()
    return {
        m.name: m.info()
        for m in CatalogModel.objects.filter(is_active=True)
        if m.endpoint in settings.GATEHOUSE_ENDPOINTS
    }


class HotState:
    """Process-local caches shared by every request of one event loop."""

    def __init__(self) -> None:
        self.principals: dict[str, tuple[Principal, float]] = {}
        self.rejected: dict[str, tuple[ApiError, float]] = {}
        self.catalogue: dict[str, ModelInfo] | None = None
        self.catalogue_loaded = 0.0
        self.listener: asyncio.Task[None] | None = None
        self.loading: dict[str, asyncio.Task[None]] = {}  # single-flight loads, by key hash or "catalog"

    def drop(self, message: str) -> None:
        deny_clear()  # limits may have changed: remembered refusals no longer hold
        kind, _, value = message.partition(":")
        if kind == "key":
            self.principals = {h: e for h, e in self.principals.items() if e[0].key_prefix != value}
        elif kind == "tenant":
            self.principals = {h: e for h, e in self.principals.items() if str(e[0].tenant_id) != value}
        elif kind == "plan":
            self.principals = {h: e for h, e in self.principals.items() if str(e[0].plan_id) != value}
        elif kind == "catalog":
            self.catalogue = None
        else:
            self.principals.clear()
            self.catalogue = None
        self.rejected.clear()

    async def listen(self) -> None:
        """Apply invalidations until cancelled; after a lost connection, start from empty caches."""
        delay = 0.5
        while True:
            try:
                pubsub = async_redis_client().pubsub()
                await pubsub.subscribe(INVALIDATE_CHANNEL)
                self.drop("all")  # anything published while we were not listening
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        self.drop(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("invalidation listener lost Redis; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def ensure_listener(self) -> None:
        if self.listener is None or self.listener.done():
            self.listener = asyncio.get_running_loop().create_task(self.listen())

    async def principal(self, raw_key: str) -> Principal:
        """The principal of a presented key.

        A cached principal older than GATEHOUSE_KEY_CACHE_SECONDS is still served while one background
        reload refreshes it (revocations and suspensions arrive over pub/sub at once; the TTL is the safety
        net), so no request waits for the database once a key is warm, and concurrent requests for a cold key
        share one load. Raises ApiError 401 (bad, revoked or expired key) or 403 (suspended tenant).
        """
        self.ensure_listener()
        if key_parse(raw_key) is None:
            raise _unauthorised("invalid")
        digest = key_hash(raw_key)
        now = time.monotonic()
        cached = self.principals.get(digest)
        if cached is not None:
            principal = cached[0]
            if now - cached[1] >= settings.GATEHOUSE_KEY_CACHE_SECONDS and digest not in self.loading:
                self._background(self._load_principal(raw_key, digest), digest)
        else:
            rejected = self.rejected.get(digest)
            if rejected is not None and now - rejected[1] < NEGATIVE_TTL:
                raise rejected[0]
            loading = self.loading.get(digest)
            if loading is None:
                loading = self._background(self._load_principal(raw_key, digest), digest)
            try:
                await asyncio.shield(loading)
            except Exception:
                log.warning("loading a key's principal failed", exc_info=True)
                raise ApiError(
                    503,
                    "Your API key cannot be verified right now; please retry.",
                    code="key_verification_unavailable",
                ) from None
            found = self.principals.get(digest)
            if found is None:
                rejection = self.rejected.get(digest)
                raise rejection[0] if rejection else _unauthorised("invalid")
            principal = found[0]
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise _unauthorised("expired")
        if not principal.tenant_active:
            raise _suspended(who=(principal.schema, principal.tenant_id, principal.key_prefix))
        return principal

    def _background(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run `work` once for `name` (single flight); callers may await the returned task."""
        task = asyncio.get_running_loop().create_task(work)
        self.loading[name] = task
        task.add_done_callback(lambda _: self.loading.pop(name, None))
        return task

    async def _load_principal(self, raw_key: str, digest: str) -> None:
        """Load (or reload) a key's principal into the cache; a refused key goes to the rejected cache."""
        try:
            principal = await sync_to_async(_load_principal)(raw_key)
        except ApiKeyError as error:
            self.principals.pop(digest, None)
            suspended = error.reason == "suspended"
            api_error = _suspended(error.detail, error.who) if suspended else _unauthorised(error.reason)
            self._remember_rejection(digest, api_error, time.monotonic())
            return
        except Exception:
            cached = self.principals.get(digest)
            if cached is None:
                raise
            log.warning("reloading a key's principal failed; serving the cached one", exc_info=True)
            self.principals[digest] = (cached[0], _retry_later())
            return
        if len(self.principals) >= MAX_ENTRIES:
            self.principals.clear()
        self.principals[digest] = (principal, time.monotonic())

    def _remember_rejection(self, digest: str, error: ApiError, now: float) -> None:
        if len(self.rejected) >= MAX_ENTRIES:
            self.rejected.clear()
        self.rejected[digest] = (error, now)

    async def models(self) -> dict[str, ModelInfo]:
        """The catalogue snapshot; stale snapshots are served while one background load refreshes them."""
        self.ensure_listener()
        catalogue = self.catalogue
        stale = time.monotonic() - self.catalogue_loaded >= settings.GATEHOUSE_KEY_CACHE_SECONDS
        if catalogue is not None:
            if stale and "catalog" not in self.loading:
                self._background(self._load_catalogue(), "catalog")
            return catalogue
        loading = self.loading.get("catalog")
        if loading is None:
            loading = self._background(self._load_catalogue(), "catalog")
        await asyncio.shield(loading)
        if self.catalogue is None:
            raise ApiError(503, "The model catalogue is unavailable.", code="catalogue_unavailable")
        return self.catalogue

    async def _load_catalogue(self) -> None:
        try:
            catalogue = await sync_to_async(_load_catalogue)()
        except Exception:
            log.warning("loading the model catalogue failed", exc_info=True)
            self.catalogue_loaded = _retry_later()
            return
        self.catalogue = catalogue
        self.catalogue_loaded = time.monotonic()


def _retry_later() -> float:
    """A load time that makes a stale entry due for reloading again in RELOAD_RETRY_SECONDS, not at once:
    while the database is down, reloads back off instead of queueing on the sync thread."""
    return time.monotonic() - settings.GATEHOUSE_KEY_CACHE_SECONDS + RELOAD_RETRY_SECONDS


def _unauthorised(reason: str) -> ApiError:
    messages = {
        "invalid": "Incorrect API key provided. You can find your API keys in your Gatehouse portal.",
        "revoked": "This API key has been revoked.",
        "expired": "This API key has expired.",
    }
    return ApiError(401, messages.get(reason, messages["invalid"]), code="invalid_api_key")


def _suspended(reason: str = "", who: tuple[str, int, str] | None = None) -> ApiError:
    why = f" ({reason})" if reason else ""
    return ApiError(
        403,
        f"This organisation is suspended{why}: API requests are refused until it is reactivated. "
        "Please check your billing status in the portal.",
        code="tenant_suspended",
        tally=who,
    )


_states: dict[int, HotState] = {}


def hot_state() -> HotState:
    """The HotState of the running event loop (tests run several loops in one process)."""
    key = id(asyncio.get_running_loop())
    state = _states.get(key)
    if state is None:
        state = _states[key] = HotState()
    return state
