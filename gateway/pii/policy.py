"""A tenant's PII policy as the hot path holds it (loaded with the API key's principal).

Per category (`gateway.pii.detect.CATEGORIES`): "off", "redact" (typed placeholders before the text leaves the
process: to a provider, into the cache, anywhere) or "block" (400, naming the categories, never the values).
`restore` maps placeholders in the answer back to the originals for the tenant.

The default of a new tenant (`GATEHOUSE_PII_DEFAULTS`) redacts secrets and payment card numbers and leaves
the rest off: a leaked key or card number is never what a prompt needs to be answered, while e-mail
addresses or phone numbers often are (drafting a reply). Tenants choose stricter policies themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings

ACTIONS = ("off", "redact", "block")


@dataclass(frozen=True, slots=True)
class PiiPolicy:
    actions: Mapping[str, str] = field(default_factory=dict)
    restore: bool = True
    scan_answers: bool = False  # also remove the redacted and blocked categories from answers

    @property
    def redacted(self) -> frozenset[str]:
        return frozenset(c for c, action in self.actions.items() if action == "redact")

    @property
    def blocked(self) -> frozenset[str]:
        return frozenset(c for c, action in self.actions.items() if action == "block")

    @property
    def answer_categories(self) -> frozenset[str]:
        """What answer scanning removes: every category not left "off"."""
        return self.redacted | self.blocked


def pii_policy_load() -> PiiPolicy:
    """The current schema's policy (its PiiSettings row over the deployment defaults). Reads only."""
    from gateway.models import PiiSettings

    defaults = settings.GATEHOUSE_PII_DEFAULTS
    row = PiiSettings.objects.filter(pk=1).first()
    actions = {**defaults["actions"], **(row.actions if row else {})}
    return PiiPolicy(
        actions=actions,
        restore=row.restore if row else bool(defaults["restore"]),
        scan_answers=row.scan_answers if row else bool(defaults.get("scan_answers", False)),
    )
