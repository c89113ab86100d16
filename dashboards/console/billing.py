"""The console's billing pages (staff only): invoice runs with their progress and a form to start one, every
tenant's invoice for a period, and the invoices whose payment failed or is overdue."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from billing.margins import period_margins
from billing.models import InvoiceRun
from billing.periods import period_of, period_previous
from billing.runs import invoice_run_create
from billing.selectors import invoice_run_list, invoices_failed, period_invoice_rows
from billing.tasks import invoice_run_task
from dashboards.console.forms import InvoiceFilterForm, InvoiceRunForm, MarginForm

ACTIVE = (InvoiceRun.Status.QUEUED, InvoiceRun.Status.RUNNING)


@staff_member_required
def invoice_runs(request: HttpRequest) -> HttpResponse:
    """The latest runs (the page reloads itself while one is queued or running); POST starts a run of a
    month that has ended, for every tenant or one, on the Celery worker."""
    form = InvoiceRunForm(initial={"period": period_previous(timezone.now())})
    status = 200
    if request.method == "POST":
        form = InvoiceRunForm(request.POST)
        if form.is_valid():
            tenant = form.cleaned_data["tenant"]
            run = invoice_run_create(period=form.cleaned_data["period"], tenant=tenant, trigger="console")
            run_id = run.pk
            transaction.on_commit(lambda: invoice_run_task.delay(run_id))
            scope = tenant.name if tenant else "every tenant"
            messages.success(request, f"Invoice run {run.pk} of {run.period} for {scope} queued.")
            return redirect("console:billing")
        status = 400
    runs = invoice_run_list()
    context = {"form": form, "runs": runs, "refresh": any(run.status in ACTIVE for run in runs)}
    return render(request, "console/billing_runs.html", context, status=status)


@staff_member_required
def period_invoices(request: HttpRequest) -> HttpResponse:
    """Every tenant's invoice of a month (default: the previous one), optionally of one status."""
    data = request.GET.copy()
    data.setdefault("period", period_previous(timezone.now()))
    form = InvoiceFilterForm(data)
    if not form.is_valid():
        return render(request, "console/billing_invoices.html", {"form": form, "rows": []}, status=400)
    rows = period_invoice_rows(period=form.cleaned_data["period"], status=form.cleaned_data["status"])
    return render(request, "console/billing_invoices.html", {"form": form, "rows": rows})


@staff_member_required
def failed_invoices(request: HttpRequest) -> HttpResponse:
    return render(request, "console/billing_failed.html", {"invoices": invoices_failed()})


@staff_member_required
def margins(request: HttpRequest) -> HttpResponse:
    """What tenants pay against what providers cost in a month (default: this one), per tenant and model."""
    data = request.GET.copy()
    data.setdefault("period", period_of(timezone.now()))
    form = MarginForm(data)
    if not form.is_valid():
        return render(request, "console/billing_margins.html", {"form": form}, status=400)
    return render(
        request,
        "console/billing_margins.html",
        {"form": form, "margins": period_margins(form.cleaned_data["period"])},
    )
