"""localstripe through the official SDK, as the billing code uses it: the server the billing tests run
against, its in-memory state, its reset, and signed webhook deliveries."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import stripe

from tests.live import ROOT
from tests.stripe_server import localstripe_reset, localstripe_webhook

SECRET = "whsec_test_localstripe"


@dataclass(frozen=True)
class Delivery:
    body: bytes
    signature: str


def client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_gatehouse", base_addresses={"api": url}, max_network_retries=0)


@pytest.fixture
def deliveries(localstripe: str) -> Iterator[queue.Queue[Delivery]]:
    """Webhook deliveries to a small HTTP receiver registered with localstripe for this test."""
    received: queue.Queue[Delivery] = queue.Queue()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put(Delivery(body, self.headers.get("Stripe-Signature", "")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook"
    localstripe_webhook(localstripe, url, SECRET, name="test-receiver")
    yield received
    # Endpoints cannot be deleted: filter this one down to an event type that never happens.
    localstripe_webhook(localstripe, url, SECRET, name="test-receiver", events=["none"])
    server.shutdown()
    server.server_close()


def mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def test_it_stores_and_resets_customers(localstripe: str) -> None:
    stripe_api = client(localstripe)
    customer = stripe_api.v1.customers.create(params={"email": "alice@acme.test", "name": "Acme Corp"})

    assert stripe_api.v1.customers.retrieve(customer.id).email == "alice@acme.test"

    localstripe_reset(localstripe)

    assert stripe_api.v1.customers.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_api.v1.customers.retrieve(customer.id)


def test_it_keeps_its_state_in_memory_only(localstripe: str) -> None:
    # localstripe's own fixed path, and the launcher's default for `make run`.
    paths = [Path("/tmp/localstripe.pickle"), ROOT / ".data" / "localstripe-run" / "state.pickle"]  # noqa: S108
    before = {path: mtime(path) for path in paths}

    # Writes are dumped before the response is sent, so nothing to wait for.
    client(localstripe).v1.customers.create(params={"email": "bob@acme.test"})

    assert {path: mtime(path) for path in paths} == before


def test_it_sends_signed_webhooks(localstripe: str, deliveries: queue.Queue[Delivery]) -> None:
    customer = client(localstripe).v1.customers.create(params={"email": "charlie@globex.test"})

    # localstripe sends each event about 1 s after it, to the endpoints registered then: events of earlier
    # tests can still arrive here, after their reset.
    while True:
        delivery = deliveries.get(timeout=10)
        event = stripe.Webhook.construct_event(delivery.body, delivery.signature, SECRET)
        if event.data.object["id"] == customer.id:
            break

    assert event.type == "customer.created"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.body, delivery.signature, "whsec_wrong")
