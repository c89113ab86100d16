"""Test settings: the same services as dev (real PostgreSQL, real Redis), isolated databases."""

from __future__ import annotations

from pathlib import Path

from config.env import env_int, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import REDIS_PORT

# A separate Redis database so that `make test` never touches a running `make run`'s data.
REDIS_URL = env_str(
    "GATEHOUSE_TEST_REDIS_URL",
    f"redis://127.0.0.1:{REDIS_PORT}/{env_int('GATEHOUSE_TEST_REDIS_DB', 15)}",
)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "gh:test",
    }
}
# The broker gets its own database: tests flush REDIS_URL's database between tests.
CELERY_BROKER_URL = env_str(
    "GATEHOUSE_TEST_BROKER_URL", f"redis://127.0.0.1:{REDIS_PORT}/{env_int('GATEHOUSE_TEST_BROKER_DB', 14)}"
)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
# Parallel test runs (e.g. two checkouts) each name their own test database.
DATABASES["default"]["TEST"] = {"NAME": env_str("GATEHOUSE_TEST_DB_NAME", "test_gatehouse")}  # noqa: F405
# Shared by the test run's processes (test runner, gateway, worker) and apart from dev data: its own spool
# directory, and a fixed secret so that keys hashed in one process verify in another.
DATA_DIR = Path(env_str("GATEHOUSE_DATA_DIR", str(BASE_DIR / ".data" / "test")))  # noqa: F405
SECRET_KEY = "gatehouse-tests-only-not-a-secret"  # noqa: S105
GATEHOUSE_PUBLIC_HOSTS = ["localhost", "127.0.0.1", "testserver"]
ALLOWED_HOSTS = [*GATEHOUSE_PUBLIC_HOSTS, ".localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Existing tests send the same prompts again and expect the upstream to see them: the cache is off unless a
# test turns it on for its tenant (a CacheSettings row).
GATEHOUSE_CACHE_DEFAULTS = {**GATEHOUSE_CACHE_DEFAULTS, "enabled": False}  # noqa: F405
