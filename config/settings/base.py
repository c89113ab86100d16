"""Settings for every environment; production differs only through environment variables.

Every variable read here is listed, with its default, in README.md's configuration table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
import django_stubs_ext
from celery.schedules import crontab

from config.env import (
    env_bool,
    env_float,
    env_int,
    env_json,
    env_list,
    env_secret,
    env_str,
    generated_secret,
)

django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(env_str("GATEHOUSE_DATA_DIR", str(BASE_DIR / ".data")))

DEBUG = env_bool("GATEHOUSE_DEBUG", False)
SECRET_KEY = env_secret("GATEHOUSE_SECRET_KEY") or generated_secret(DATA_DIR / "secret_key")

# Hosts: the public host serves the console, sign-up, admin and the API; tenant portals live on
# <slug>.<GATEHOUSE_BASE_DOMAIN>.
GATEHOUSE_BASE_DOMAIN = env_str("GATEHOUSE_BASE_DOMAIN", "localhost")
GATEHOUSE_PUBLIC_HOSTS = env_list("GATEHOUSE_PUBLIC_HOSTS", [GATEHOUSE_BASE_DOMAIN, "127.0.0.1"])
GATEHOUSE_PUBLIC_URL = env_str("GATEHOUSE_PUBLIC_URL", "http://localhost:8000")
ALLOWED_HOSTS = env_list(
    "GATEHOUSE_ALLOWED_HOSTS",
    [*GATEHOUSE_PUBLIC_HOSTS, f".{GATEHOUSE_BASE_DOMAIN}"],
)
CSRF_TRUSTED_ORIGINS = env_list(
    "GATEHOUSE_CSRF_TRUSTED_ORIGINS",
    ["http://localhost:8000", "http://*.localhost:8000", "http://127.0.0.1:8000"],
)

SHARED_APPS = [
    # `tenants` first: its create_tenant command (DESIGN.md's contract) overrides django-tenants' own.
    "tenants",
    "django_tenants",
    "billing",
    "gateway.catalog",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "dashboards",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "gateway",
]
INSTALLED_APPS = list(SHARED_APPS) + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
AUTH_USER_MODEL = "tenants.User"
PUBLIC_SCHEMA_URLCONF = "config.urls_public"
ROOT_URLCONF = "config.urls_tenants"
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

MIDDLEWARE = [
    "tenants.middleware.TenantHostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tenants.middleware.TenantMembershipMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.tenant",
            ],
        },
    },
]

ASGI_APPLICATION = "config.asgi.application"

# PostgreSQL (with pgvector). Without DATABASE_URL: the embedded server that scripts/postgres.sh runs.
PG_PORT = env_int("GATEHOUSE_PG_PORT", 55432)
DATABASE_URL = env_str("DATABASE_URL", f"postgres://postgres@127.0.0.1:{PG_PORT}/gatehouse")
DATABASES = {
    "default": {
        **dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("GATEHOUSE_DB_CONN_MAX_AGE", 60)),
        "ENGINE": "django_tenants.postgresql_backend",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: rate limits, circuit state, caches, usage stream, Celery broker, Channels layer.
REDIS_PORT = env_int("GATEHOUSE_REDIS_PORT", 6390)
REDIS_URL = env_str("REDIS_URL", f"redis://127.0.0.1:{REDIS_PORT}/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "gh:cache",
    }
}
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    # Safety net: the `usage` process stores usage continuously; this catches what it left (or all of it,
    # if it is not running), including spool files written while Redis was unreachable.
    "usage-consume-pending": {
        "task": "gateway.metering.tasks.usage_consume_pending",
        "schedule": float(env_int("GATEHOUSE_USAGE_SAFETY_NET_SECONDS", 60)),
    },
    # Expired cache entries, and each tenant's least useful entries beyond its `max_entries`.
    "cache-evict": {
        "task": "gateway.cache.tasks.cache_evict_all",
        "schedule": float(env_int("GATEHOUSE_CACHE_EVICT_SECONDS", 300)),
    },
    # Budget alerts the limiter reported (gateway.limits.alerts): recorded, then passed to the hooks.
    "budget-alerts": {
        "task": "gateway.limits.tasks.budget_alerts_drain",
        "schedule": float(env_int("GATEHOUSE_BUDGET_ALERT_SECONDS", 5)),
    },
    # Usage rollups (billing.rollups): the days that received records since the last pass.
    "billing-rollups": {
        "task": "billing.tasks.rollups_update",
        "schedule": float(env_int("GATEHOUSE_ROLLUP_SECONDS", 300)),
    },
    # The invoice run of the month that just ended: 01:00 UTC on the 1st (usage lags by seconds).
    "billing-invoice-run": {
        "task": "billing.tasks.invoice_run_previous_month",
        "schedule": crontab(minute=0, hour=1, day_of_month=1),
    },
    # Unpaid invoices past their grace period suspend their tenants; meter events (meters mode) are sent.
    "billing-grace": {
        "task": "billing.tasks.grace_enforce",
        "schedule": float(env_int("GATEHOUSE_BILLING_GRACE_CHECK_SECONDS", 600)),
    },
    "billing-meter-events": {
        "task": "billing.tasks.meter_events_send",
        "schedule": float(env_int("GATEHOUSE_METER_SEND_SECONDS", 300)),
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("GATEHOUSE_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

EMAIL_BACKEND = env_str("GATEHOUSE_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("GATEHOUSE_FROM_EMAIL", "Gatehouse <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# API keys: HMAC-SHA256 with this secret (derived from SECRET_KEY unless set). Changing it invalidates keys.
GATEHOUSE_API_KEY_SECRET = env_secret("GATEHOUSE_API_KEY_SECRET")
GATEHOUSE_KEY_CACHE_SECONDS = env_int("GATEHOUSE_KEY_CACHE_SECONDS", 30)

LOG_LEVEL = env_str("GATEHOUSE_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},  # one line per upstream call, with URLs: the access log says enough
        "httpcore": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},  # two lines per API call at INFO
    },
}

# Inference gateway ------------------------------------------------------------------------------------
# Upstream endpoints: base URL and credentials per deployment. Catalogue entries name one of these.
OPENAI_API_KEY = env_secret("OPENAI_API_KEY")
ANTHROPIC_API_KEY = env_secret("ANTHROPIC_API_KEY")
GATEHOUSE_SIMULATOR_URL = env_str("GATEHOUSE_SIMULATOR_URL", "http://127.0.0.1:8100")
# `byok`: whether tenants may use their own key there (then its models are charged the plan's BYOK fee instead
# of their catalogue price); endpoints from GATEHOUSE_EXTRA_ENDPOINTS accept tenant keys only if they say so.
GATEHOUSE_ENDPOINTS: dict[str, dict[str, Any]] = {
    "openai": {
        "base_url": env_str("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        "api_key": OPENAI_API_KEY,
        "byok": env_bool("OPENAI_BYOK", True),
    },
    "anthropic": {
        "base_url": env_str("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
        "api_key": ANTHROPIC_API_KEY,
        "byok": env_bool("ANTHROPIC_BYOK", True),
    },
    "simulator": {"base_url": f"{GATEHOUSE_SIMULATOR_URL}/v1", "api_key": "simulator", "byok": False},
    **env_json("GATEHOUSE_EXTRA_ENDPOINTS", {}),
}
for _name, _endpoint in GATEHOUSE_ENDPOINTS.items():
    if not isinstance(_endpoint.get("byok", False), bool):  # "false" (a string) must not mean yes
        raise ValueError(f"GATEHOUSE_EXTRA_ENDPOINTS: byok of {_name!r} must be true or false")
# Default fallback chains per task type; tenants can override them. The simulator's models keep everything
# working without provider keys; with real keys, real models go first.
_REAL_CHAINS: dict[str, list[str]] = {
    "simple": (["gpt-4o-mini"] if OPENAI_API_KEY else [])
    + (["anthropic/claude-haiku-4-5"] if ANTHROPIC_API_KEY else []),
    "reasoning": (["anthropic/claude-sonnet-4-5"] if ANTHROPIC_API_KEY else [])
    + (["gpt-4.1"] if OPENAI_API_KEY else []),
    "code": (["anthropic/claude-sonnet-4-5"] if ANTHROPIC_API_KEY else [])
    + (["gpt-4.1-mini"] if OPENAI_API_KEY else []),
    "vision": (["gpt-4o-mini"] if OPENAI_API_KEY else [])
    + (["anthropic/claude-haiku-4-5"] if ANTHROPIC_API_KEY else []),
}
GATEHOUSE_DEFAULT_CHAINS: dict[str, list[str]] = env_json(
    "GATEHOUSE_DEFAULT_CHAINS",
    {
        "simple": [*_REAL_CHAINS["simple"], "sim/fast", "sim/smart"],
        "reasoning": [*_REAL_CHAINS["reasoning"], "sim/smart", "sim/fast"],
        "code": [*_REAL_CHAINS["code"], "sim/code", "sim/smart"],
        "vision": [*_REAL_CHAINS["vision"], "sim/vision"],
    },
)
GATEHOUSE_MAX_BODY_BYTES = env_int("GATEHOUSE_MAX_BODY_BYTES", 4 * 1024 * 1024)
GATEHOUSE_CONNECT_TIMEOUT = env_float("GATEHOUSE_CONNECT_TIMEOUT", 5.0)
GATEHOUSE_FIRST_BYTE_TIMEOUT = env_float("GATEHOUSE_FIRST_BYTE_TIMEOUT", 60.0)
GATEHOUSE_TOTAL_TIMEOUT = env_float("GATEHOUSE_TOTAL_TIMEOUT", 600.0)
GATEHOUSE_MAX_ATTEMPTS_PER_MODEL = env_int("GATEHOUSE_MAX_ATTEMPTS_PER_MODEL", 3)
GATEHOUSE_RETRY_BASE_SECONDS = env_float("GATEHOUSE_RETRY_BASE_SECONDS", 0.25)
GATEHOUSE_RETRY_MAX_SECONDS = env_float("GATEHOUSE_RETRY_MAX_SECONDS", 8.0)
# Circuit breaker per provider model, shared by every web process through Redis.
GATEHOUSE_CIRCUIT_FAILURES = env_int("GATEHOUSE_CIRCUIT_FAILURES", 5)
GATEHOUSE_CIRCUIT_WINDOW_SECONDS = env_int("GATEHOUSE_CIRCUIT_WINDOW_SECONDS", 30)
GATEHOUSE_CIRCUIT_OPEN_SECONDS = env_float("GATEHOUSE_CIRCUIT_OPEN_SECONDS", 30.0)
GATEHOUSE_STATE_CACHE_SECONDS = env_float("GATEHOUSE_STATE_CACHE_SECONDS", 0.5)
# Response cache (gateway/cache): defaults of tenants that saved no settings of their own, and the embedder.
GATEHOUSE_CACHE_DEFAULTS: dict[str, Any] = {
    "enabled": env_bool("GATEHOUSE_CACHE_ENABLED", True),
    "semantic": True,
    "threshold": env_float("GATEHOUSE_CACHE_THRESHOLD", 0.92),
    "ttl_seconds": 3600,
    "max_entries": 10_000,
    "max_temperature": 1.0,
}
# PII policy of tenants that saved none of their own (gateway/pii/policy.py): secrets and card numbers are
# redacted before anything leaves the process; a JSON object of category -> off / redact / block overrides.
GATEHOUSE_PII_DEFAULTS: dict[str, Any] = {
    "actions": {
        "secret": "redact",
        "card": "redact",
        "email": "off",
        "phone": "off",
        "iban": "off",
        "ssn": "off",
        "ip": "off",
        **env_json("GATEHOUSE_PII_DEFAULT_ACTIONS", {}),
    },
    "restore": True,
}
GATEHOUSE_CACHE_EMBEDDER = env_str("GATEHOUSE_CACHE_EMBEDDER", "local")
GATEHOUSE_CACHE_EMBED_THREADS = env_int("GATEHOUSE_CACHE_EMBED_THREADS", 1)
GATEHOUSE_CACHE_CANDIDATES = env_int("GATEHOUSE_CACHE_CANDIDATES", 5)
GATEHOUSE_CACHE_DB_POOL_SIZE = env_int("GATEHOUSE_CACHE_DB_POOL_SIZE", 4)
GATEHOUSE_ACCESS_LOG = env_bool("GATEHOUSE_ACCESS_LOG", True)
GATEHOUSE_METRICS_TOKEN = env_secret("GATEHOUSE_METRICS_TOKEN")
# Encrypts tenants' own provider keys at rest; derived from the secret key when unset.
GATEHOUSE_ENCRYPTION_KEY = env_secret("GATEHOUSE_ENCRYPTION_KEY")

# Limits and budgets (gateway.limits, docs/LIMITS.md).
# Redis down: "open" serves requests unchecked (logged and metered as always), "closed" answers 503.
GATEHOUSE_LIMITS_REDIS_DOWN = env_str("GATEHOUSE_LIMITS_REDIS_DOWN", "open")
if GATEHOUSE_LIMITS_REDIS_DOWN not in ("open", "closed"):
    raise ValueError("GATEHOUSE_LIMITS_REDIS_DOWN must be 'open' or 'closed'")
GATEHOUSE_LIMITS_TIMEOUT = env_float("GATEHOUSE_LIMITS_TIMEOUT", 0.25)
# A request's slot and budget reservation are freed after this long if its process never settles it.
GATEHOUSE_LIMITS_LEASE_SECONDS = env_float("GATEHOUSE_LIMITS_LEASE_SECONDS", GATEHOUSE_TOTAL_TIMEOUT + 60)
# Process liveness (gateway.metering.liveness): each web process refreshes a heartbeat this often; one not
# refreshed for the TTL is dead, and the requests it left open are settled from their last checkpoint (slots
# and reservations freed, what was delivered billed) by the usage consumer within about TTL + 1 s.
GATEHOUSE_HEARTBEAT_SECONDS = env_float("GATEHOUSE_HEARTBEAT_SECONDS", 1.0)
GATEHOUSE_HEARTBEAT_TTL_SECONDS = env_float("GATEHOUSE_HEARTBEAT_TTL_SECONDS", 5.0)
# A stream records what it has delivered at most this often (not awaited), besides once before its first byte.
GATEHOUSE_CHECKPOINT_SECONDS = env_float("GATEHOUSE_CHECKPOINT_SECONDS", 1.0)
# Dead letters (usage entries that cannot be parsed at all) kept in gh:usage:dead, oldest dropped first.
GATEHOUSE_USAGE_DEAD_MAX = env_int("GATEHOUSE_USAGE_DEAD_MAX", 10_000)
GATEHOUSE_BUDGET_ALERT_HOOKS = env_list(
    "GATEHOUSE_BUDGET_ALERT_HOOKS",
    ["gateway.limits.alerts.email_owners", "gateway.limits.alerts.post_webhook"],
)
GATEHOUSE_BUDGET_ALERT_WEBHOOK_URL = env_str("GATEHOUSE_BUDGET_ALERT_WEBHOOK_URL", "")
GATEHOUSE_TEST_CLOCK_FILE = env_str("GATEHOUSE_TEST_CLOCK_FILE", "")  # tests only: see gateway.limits.clock

# Billing (billing/, docs/BILLING.md). Without STRIPE_API_KEY the defaults point at localstripe, the
# Stripe-compatible dev server `make run` starts; a real key with STRIPE_API_BASE unset means real Stripe.
STRIPE_API_KEY = env_secret("STRIPE_API_KEY") or "sk_test_gatehouse_localstripe"
STRIPE_API_BASE = env_str(
    "STRIPE_API_BASE",
    "" if env_secret("STRIPE_API_KEY") else f"http://127.0.0.1:{env_int('GATEHOUSE_LOCALSTRIPE_PORT', 8420)}",
)
STRIPE_WEBHOOK_SECRET = env_secret("STRIPE_WEBHOOK_SECRET") or "whsec_gatehouse_dev_only"
# localstripe gaps (no finalize; invoices only for subscribed customers): on by default with STRIPE_API_BASE
GATEHOUSE_STRIPE_LOCALSTRIPE = env_bool("GATEHOUSE_STRIPE_LOCALSTRIPE", bool(STRIPE_API_BASE))
GATEHOUSE_STRIPE_NETWORK_RETRIES = env_int("GATEHOUSE_STRIPE_NETWORK_RETRIES", 2)
# Signed webhooks older than this are refused (replay protection), as Stripe's libraries do by default.
GATEHOUSE_STRIPE_WEBHOOK_TOLERANCE = env_int("GATEHOUSE_STRIPE_WEBHOOK_TOLERANCE", 300)
# "invoice_items": our rated lines become invoice items of one invoice per period. "meters": daily meter
# events to a Stripe Billing Meter instead (Stripe then invoices through the tenant's metered price).
GATEHOUSE_BILLING_MODE = env_str("GATEHOUSE_BILLING_MODE", "invoice_items")
if GATEHOUSE_BILLING_MODE not in ("invoice_items", "meters"):
    raise ValueError("GATEHOUSE_BILLING_MODE must be 'invoice_items' or 'meters'")
GATEHOUSE_METER_EVENT_NAME = env_str("GATEHOUSE_METER_EVENT_NAME", "gatehouse_usage")
GATEHOUSE_METER_UNIT = env_str("GATEHOUSE_METER_UNIT", "0.0001")  # currency per meter unit
# An issued invoice still unpaid this many days later suspends its tenant (until it is paid).
GATEHOUSE_BILLING_GRACE_DAYS = env_float("GATEHOUSE_BILLING_GRACE_DAYS", 14)
# How often a failed invoice run is retried (Stripe unreachable), and how long between attempts.
GATEHOUSE_BILLING_RUN_RETRIES = env_int("GATEHOUSE_BILLING_RUN_RETRIES", 12)
GATEHOUSE_BILLING_RUN_RETRY_SECONDS = env_float("GATEHOUSE_BILLING_RUN_RETRY_SECONDS", 300)
# Tenants invoiced at once by a run (each is about 14 Stripe calls; keep it within Stripe's rate limits).
GATEHOUSE_BILLING_RUN_CONCURRENCY = env_int("GATEHOUSE_BILLING_RUN_CONCURRENCY", 4)
GATEHOUSE_METER_SETTLE_HOURS = env_float(
    "GATEHOUSE_METER_SETTLE_HOURS", 2
)  # a day is reported this long after it ends
