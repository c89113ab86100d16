"""Self-service sign-up on the public host, end to end through the Django test client."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client

from tenants.models import Membership, Tenant, User
from tests.conftest import host_client, signed_in

pytestmark = pytest.mark.django_db

GOOD = {
    "name": "Umbrella Ltd",
    "slug": "umbrella",
    "email": "ada@umbrella.test",
    "password1": "a sturdy passphrase 42",
    "password2": "a sturdy passphrase 42",
}


def follow_handoff(location: str) -> tuple[Client, str]:
    url = urlsplit(location)
    client = host_client(url.hostname or "")
    return client, url.path


def test_sign_up_creates_the_tenant_and_lands_the_owner_in_the_portal(world: object) -> None:
    response = host_client("localhost").post("/signup/", GOOD)

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("http://umbrella.localhost:8000/auth/handoff/")
    tenant = Tenant.objects.get(slug="umbrella")
    assert Membership.objects.get(tenant=tenant).role == "owner"

    portal, path = follow_handoff(location)
    landed = portal.get(path, follow=True)
    assert landed.status_code == 200
    assert landed.redirect_chain[-1][0] == "/"
    assert "Umbrella Ltd" in landed.content.decode()
    assert portal.get("/keys/").status_code == 200


def test_a_handoff_link_works_once(world: object) -> None:
    location = host_client("localhost").post("/signup/", GOOD)["Location"]
    first, path = follow_handoff(location)
    first.get(path)

    second, _ = follow_handoff(location)
    response = second.get(path)

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in second.session


def test_a_handoff_link_for_one_tenant_does_not_open_another(world: object) -> None:
    location = host_client("localhost").post("/signup/", GOOD)["Location"]
    path = urlsplit(location).path

    response = host_client("acme.localhost").get(path)

    assert response.status_code == 302
    assert response["Location"] == "/login/"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"slug": "acme"}, "slug", "taken"),
        ({"slug": "www"}, "slug", "reserved"),
        ({"slug": "admin"}, "slug", "reserved"),
        ({"slug": "public"}, "slug", "reserved"),
        ({"slug": "Bad Slug!"}, "slug", "lowercase letters"),
        ({"slug": "x"}, "slug", "3 to 40 characters"),
        ({"slug": ""}, "slug", "required"),
        ({"slug": "a" * 41}, "slug", "at most 40"),
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"email": "alice@acme.test"}, "email", "exists"),
        ({"password1": "password", "password2": "password"}, "password1", "too short"),
        ({"password1": "12345678901234", "password2": "12345678901234"}, "password1", "entirely numeric"),
        ({"password1": "umbrella-ada-2", "password2": "umbrella-ada-2"}, "password1", "too common|similar"),
        ({"password2": "something else entirely"}, "password2", "differ"),
        ({"name": ""}, "name", "required"),
    ],
)
def test_bad_sign_up_input_gets_form_errors_not_a_500(
    world: object, changes: dict[str, str], field: str, message: str
) -> None:
    import re

    response = host_client("localhost").post("/signup/", {**GOOD, **changes})

    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert re.search(message, " ".join(errors[field]), re.IGNORECASE), errors[field]
    assert not Tenant.objects.filter(name="Umbrella Ltd").exists()


def test_garbage_sign_up_bodies_never_500(world: object) -> None:
    client = host_client("localhost")
    for body in [{}, {"slug": "\x00"}, {"slug": "a" * 10_000}, {"email": "@" * 300}, {"name": "é" * 500}]:
        assert client.post("/signup/", body).status_code == 400


def test_a_signed_in_user_creates_another_organisation(world: object) -> None:
    client = signed_in("localhost", "alice@acme.test")

    response = client.post("/signup/", {"name": "Alice Side Project", "slug": "alice-side"})

    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="alice-side")
    assert Membership.objects.get(tenant=tenant).user.email == "alice@acme.test"


def test_the_public_home_lists_the_users_organisations(world: object) -> None:
    page = signed_in("localhost", "alice@acme.test").get("/").content.decode()

    assert "Acme Corp" in page
    assert "Globex" not in page


def test_password_reset_sends_a_link_that_sets_a_new_password(world: object) -> None:
    client = host_client("localhost")
    client.post("/password-reset/", {"email": "bob@acme.test"})

    assert len(mail.outbox) == 1
    link = next(line for line in mail.outbox[0].body.splitlines() if "/password-reset/" in line)
    path = urlsplit(link.strip()).path
    form_page = client.get(path, follow=True)
    new = "a brand new passphrase 7"
    done = client.post(form_page.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})

    assert done.status_code == 302
    assert User.objects.get(email="bob@acme.test").check_password(new)
