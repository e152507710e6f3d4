"""The creator's public page, /c/<slug>: their name and bio, sessions on sale and past ones; the address and bio set
on the profile; over the HTTP app."""

from __future__ import annotations

import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask_migrate import upgrade
from sqlalchemy import text, update

from tests.conftest import PASSWORD, Api, _base_config, csrf_in, session_payload
from webinar_pay import create_app
from webinar_pay.extensions import db
from webinar_pay.models import Creator, LiveSession, utcnow
from webinar_pay.services.creators import slug_for


def _login(client, email: str = "creator@example.com") -> None:
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"csrf_token": csrf_in(page), "email": email, "password": PASSWORD})
    assert response.status_code == 302


def _publish(api: Api, **overrides) -> int:
    status, body = api.post("/api/v1/sessions", session_payload(**overrides))
    assert status == 201, body
    assert api.post(f"/api/v1/sessions/{body['id']}/publish")[0] == 200
    return body["id"]


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Ada Teacher", "ada-teacher"), ("Zoë  Ångström", "zoe-angstrom"), ("李", "creator"), ("Al", "creator-al")],
)
def test_a_page_address_from_a_name(name, slug):
    assert slug_for(name) == slug


def test_the_page_shows_the_creator_their_sessions_on_sale_and_past_ones(app, client, create_creator):
    _creator_id, token = create_creator(name="Ada Teacher")
    other_id, other_token = create_creator(email="other@example.com", name="Ada Teacher")
    api = Api(client, token)
    soon = _publish(api, title="Inks", starts_at=(utcnow() + timedelta(days=2)).replace(microsecond=0).isoformat())
    later = _publish(api, title="Glazes", price=0)
    past = _publish(api, title="Washes")
    draft = api.post("/api/v1/sessions", session_payload(title="Secret draft"))[1]["id"]
    cancelled = _publish(api, title="Cancelled one")
    _publish(Api(client, other_token), title="Someone else's")
    with app.app_context():
        db.session.execute(update(LiveSession).where(LiveSession.id == past)
                           .values(starts_at=utcnow() - timedelta(days=3)))  # fmt: skip
        db.session.execute(update(LiveSession).where(LiveSession.id == cancelled).values(status="cancelled"))
        db.session.commit()
        slugs = (db.session.get(Creator, _creator_id).slug, db.session.get(Creator, other_id).slug)
    assert slugs == ("ada-teacher", f"ada-teacher-{other_id}")  # the same name twice: the second gets its id

    response = client.get("/c/ada-teacher")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<h1>Ada Teacher</h1>" in page
    upcoming = page.split('id="upcoming"')[1].split("</ul>")[0]
    assert upcoming.index("Inks") < upcoming.index("Glazes") and "Free" in upcoming
    assert f'href="/s/{soon}"' in upcoming and f'href="/s/{later}"' in upcoming
    assert f'href="/s/{past}"' in page.split('id="past"')[1]
    for absent in ("Secret draft", "Someone else's", "Cancelled one", f"/s/{draft}"):
        assert absent not in page, absent
    assert '<meta property="og:title" content="Ada Teacher">' in page
    assert '<meta property="og:url" content="http://127.0.0.1:5000/c/ada-teacher">' in page

    session_page = client.get(f"/s/{soon}").get_data(as_text=True)
    assert '<a href="/c/ada-teacher">by Ada Teacher</a>' in session_page


def test_unknown_odd_or_deleted_pages_are_not_found(app, client, create_creator):
    creator_id, _token = create_creator()
    for slug in ("nobody", "ADA", "a" * 300, "ada%00teacher", "..", "ada teacher"):
        assert client.get(f"/c/{slug}").status_code == 404, slug
    with app.app_context():
        db.session.execute(update(Creator).where(Creator.id == creator_id).values(deleted_at=utcnow()))
        db.session.commit()
    assert client.get("/c/ada-teacher").status_code == 404


def test_the_creator_sets_the_address_and_a_markdown_bio_on_the_profile(client, create_creator):
    create_creator()
    create_creator(email="other@example.com", name="Bo Other")
    _login(client)
    page = client.get("/dashboard/profile").get_data(as_text=True)
    assert 'name="slug"' in page and 'value="ada-teacher"' in page and "/c/ada-teacher" in page
    form = {"csrf_token": csrf_in(page), "name": "Ada Teacher", "timezone": "Europe/Paris", "locale": "en"}

    for slug in ("Ab", "-ada", "ada--teacher", "ada_teacher", "x" * 51, "bo-other"):
        refused = client.post("/dashboard/profile", data={**form, "slug": slug, "bio": ""})
        assert refused.status_code == 422, slug
        assert 'aria-invalid="true" aria-describedby="slug-error"' in refused.get_data(as_text=True), slug
    too_long = client.post("/dashboard/profile", data={**form, "slug": "ada", "bio": "x" * 2001})
    assert too_long.status_code == 422 and "at most 2000 characters" in too_long.get_data(as_text=True)

    bio = "Painter in **Lyon**.\n<script>alert(1)</script>"
    saved = client.post("/dashboard/profile", data={**form, "slug": " Ada-Paints ", "bio": bio})
    assert saved.status_code == 302
    assert client.get("/c/ada-teacher").status_code == 404
    page = client.get("/c/ada-paints").get_data(as_text=True)
    assert "Painter in <strong>Lyon</strong>.<br>" in page and "<script>alert" not in page
    summary = re.search(r'<meta name="description" content="([^"]*)">', page)[1]
    assert summary.startswith("Painter in Lyon.")


def test_the_migration_gives_existing_creators_a_page_address():
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='webinar_pay_migration_')) / 'old.sqlite3'}"
    app = create_app(_base_config(url))
    with app.app_context():
        upgrade(revision="0012_attendee_privacy")
        insert = text(
            "INSERT INTO creators (id, email, name, password_hash, role, timezone, created_at) "
            "VALUES (:id, :email, :name, 'x', 'creator', 'UTC', :now)"
        )
        for creator_id, name in ((1, "Ada Teacher"), (2, "Ada Teacher"), (3, "李")):
            row = {"id": creator_id, "email": f"c{creator_id}@example.com", "name": name, "now": datetime(2026, 1, 1)}
            db.session.execute(insert, row)
        db.session.commit()
        upgrade(revision="0014_storefront")
        slugs = dict(db.session.execute(text("SELECT id, slug FROM creators")).all())
        db.engine.dispose()
    assert slugs == {1: "ada-teacher-1", 2: "ada-teacher-2", 3: "creator-3"}
