"""Seed the benchmark database: tenant `bench`, one API key, catalogue entries `fake-0ms` / `fake-50ms`.

Idempotent. Run by bench/run.sh with DATABASE_URL / REDIS_URL / GATEHOUSE_DATA_DIR already exported (never
against the dev database: it refuses any database whose name does not end in `_bench`):

    DJANGO_SETTINGS_MODULE=config.settings.base .venv/bin/python bench/prepare.py --key-file FILE

The raw API key exists only at creation, so it is kept in FILE (git-ignored bench/results/) and reused while
it still authenticates; otherwise a new key is created and FILE rewritten. The key hash derives from the
secret key in GATEHOUSE_DATA_DIR: the server must run with the same GATEHOUSE_DATA_DIR (or secret).

Prints `BENCH_KEY=<raw key>` and `BENCH_RECORDS=<RequestRecords of the bench tenant>` on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django_tenants.utils import schema_context  # noqa: E402

from gateway.cache.manage import cache_settings_set  # noqa: E402
from gateway.catalog.models import CatalogModel  # noqa: E402
from gateway.keys import api_key_create, key_hash, key_parse  # noqa: E402
from gateway.limits.manage import limits_set  # noqa: E402
from gateway.models import ApiKey, RequestRecord  # noqa: E402
from tenants.models import ApiKeyRoute, Tenant  # noqa: E402
from tenants.services import tenant_create  # noqa: E402

SLUG = "bench"
MODELS = {"fake-0ms": "bench0", "fake-50ms": "bench50"}


def tenant_ensure() -> Tenant:
    tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is None:
        tenant = tenant_create(
            slug=SLUG, name="Bench", owner_email="bench@example.com", owner_password=None
        ).tenant
    # The gateway benchmark measures the path through to the upstream: no response cache (its own
    # benchmarks are bench/cache_*.py).
    cache_settings_set(tenant=tenant, enabled=False)
    # The limiter runs on every request (its Redis call is part of what is measured) with limits far above
    # the load, so no request is refused.
    limits_set(tenant=tenant, above_plan=True, rpm=1_000_000_000, tpm=2_000_000_000, concurrency=100_000)
    return tenant


def key_ensure(tenant: Tenant, key_file: Path) -> str:
    if key_file.exists() and _key_valid(tenant, key_file.read_text().strip()):
        return key_file.read_text().strip()
    raw = api_key_create(tenant=tenant, name="bench").raw_key
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(raw + "\n")
    return raw


def _key_valid(tenant: Tenant, raw: str) -> bool:
    """The stored key still works: this tenant's, same hash (same secret), not revoked or expired."""
    parsed = key_parse(raw)
    if parsed is None or not ApiKeyRoute.objects.filter(prefix=parsed.prefix, tenant=tenant).exists():
        return False
    with schema_context(tenant.schema_name):
        api_key = ApiKey.objects.filter(prefix=parsed.prefix).first()
    return (
        api_key is not None
        and api_key.key_hash == key_hash(raw)
        and api_key.status not in (ApiKey.Status.REVOKED, ApiKey.Status.EXPIRED)
    )


def catalogue_ensure() -> None:
    for name, endpoint in MODELS.items():
        if endpoint not in settings.GATEHOUSE_ENDPOINTS:
            sys.exit(
                f"prepare: endpoint {endpoint!r} missing: set GATEHOUSE_EXTRA_ENDPOINTS (bench/run.sh does)"
            )
        CatalogModel.objects.update_or_create(
            name=name,
            defaults={
                "provider": CatalogModel.Provider.OPENAI_COMPATIBLE,
                "endpoint": endpoint,
                "upstream_model": "gpt-4o-mini",
                "input_price_per_mtok": Decimal("0.15"),
                "output_price_per_mtok": Decimal("0.60"),
                "context_window": 128_000,
                "is_active": True,
            },
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--count-only", action="store_true", help="only print BENCH_RECORDS")
    args = parser.parse_args()
    database = settings.DATABASES["default"]["NAME"]
    if not str(database).endswith("_bench"):
        sys.exit(f"prepare: refusing to seed database {database!r} (expected a *_bench database)")
    if args.count_only:
        tenant = Tenant.objects.filter(slug=SLUG).first()
    else:
        tenant = tenant_ensure()
        catalogue_ensure()
        print(f"BENCH_KEY={key_ensure(tenant, args.key_file)}")
    records = 0
    if tenant is not None:
        with schema_context(tenant.schema_name):
            records = RequestRecord.objects.count()
    print(f"BENCH_RECORDS={records}")


if __name__ == "__main__":
    main()
