"""Unpaid invoices: a tenant whose issued invoice is still unpaid after the grace period is suspended (its
API keys get 403 with the reason); it is reinstated when no overdue invoice is left (paid or voided).

Only suspensions made here are lifted here: an operator's own suspension (another reason) is left alone.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from billing.models import Invoice
from tenants.models import Tenant
from tenants.services import tenant_reactivate, tenant_suspend

logger = logging.getLogger(__name__)

REASON_PREFIX = "unpaid invoice"
UNPAID = (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE)  # issued and still owed


def overdue_invoices(now: datetime | None = None) -> QuerySet[Invoice]:
    cutoff = (now or timezone.now()) - timedelta(days=settings.GATEHOUSE_BILLING_GRACE_DAYS)
    return Invoice.objects.filter(status__in=UNPAID, issued_at__lte=cutoff)


def grace_enforce(now: datetime | None = None) -> int:
    """Suspend every active tenant with an overdue invoice; returns how many were suspended."""
    suspended = 0
    for invoice in overdue_invoices(now).select_related("tenant").order_by("issued_at"):
        tenant = invoice.tenant
        if tenant.status != Tenant.Status.ACTIVE:
            continue
        label = invoice.number or invoice.period
        tenant_suspend(
            tenant=tenant,
            reason=f"{REASON_PREFIX} {label}, issued {invoice.issued_at:%Y-%m-%d}: pay it to restore access",
        )
        logger.info("billing: tenant %s suspended for unpaid invoice %s", tenant.pk, invoice.pk)
        suspended += 1
    return suspended


def tenant_reinstate_if_settled(tenant_id: int) -> bool:
    """Reactivate a tenant suspended for unpaid invoices once none is overdue; True if reactivated."""
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or tenant.is_active or not tenant.suspension_reason.startswith(REASON_PREFIX):
        return False
    if overdue_invoices().filter(tenant_id=tenant_id).exists():
        return False
    tenant_reactivate(tenant=tenant)
    logger.info("billing: tenant %s reinstated (no overdue invoice left)", tenant_id)
    return True
