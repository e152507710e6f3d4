"""Whose Zoom meeting is it: every creator shares the app's Zoom account, so a meeting ID must be the creator's own
(scheduled for them by the app, or hosted by the Zoom user linked on their profile) before it can be sold."""

from __future__ import annotations

import html
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select, text

from tests.conftest import Api, session_payload
from tests.zoom_setup import link_creator
from webinar_pay.extensions import db
from webinar_pay.models import Creator, ZoomMeeting
from webinar_pay.services.creators import find_creator, link_zoom_user

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
NOT_YOURS = "You have no Zoom meeting with this ID."


@pytest.fixture
def zoom_server(live_server, fake_zoom):
    return live_server(**fake_zoom.config(), ZOOM_RETRY_BACKOFF_SECONDS=0, ZOOM_MAX_RETRIES=0)


def _api(server, create_creator, email: str) -> Api:
    return Api(server.url, create_creator(email=email)[1])


def _draft(api: Api, **overrides) -> int:
    payload = session_payload(platform="zoom", join_link=None, **overrides)
    status, body = api.post("/api/v1/sessions", payload)
    assert status == 201, body
    return body["id"]


def _publish(api: Api, session_id: int) -> tuple[int, dict]:
    return api.post(f"/api/v1/sessions/{session_id}/publish")


def _zoom_user_of(server, email: str) -> str | None:
    with server.app.app_context():
        return db.session.scalar(select(Creator.zoom_user_id).where(Creator.email == email))


class Browser:
    """A creator logged in to the dashboard over HTTP."""

    def __init__(self, url: str, email: str):
        self.url = url
        self.web = requests.Session()
        page = self.web.get(url + "/login", timeout=10).text
        form = {"email": email, "password": PASSWORD, "csrf_token": self.csrf(page)}
        assert self.web.post(url + "/login", data=form, timeout=10).ok

    @staticmethod
    def csrf(page: str) -> str:
        return page.split('name="csrf_token" value="')[1].split('"')[0]

    def save_profile(self, **fields: str) -> requests.Response:
        page = self.web.get(self.url + "/dashboard/profile", timeout=10).text
        form = {"name": "Ada Teacher", "timezone": "Europe/Paris", "reply_to": "", "brand_colour": "", "logo_url": "",
                "zoom_user": "", "csrf_token": self.csrf(page), **fields}  # fmt: skip
        return self.web.post(self.url + "/dashboard/profile", data=form, timeout=10)


# -- meetings ------------------------------------------------------------------------------------------------------


def test_a_creator_cannot_sell_seats_in_the_meeting_the_app_scheduled_for_another_creator(
    zoom_server, create_creator, fake_zoom
):
    bea = _api(zoom_server, create_creator, "bea@example.com")
    paid = _draft(bea, price=5000)  # no ID: the app schedules the meeting for Bea
    status, published = _publish(bea, paid)
    assert status == 200
    bea_meeting = published["zoom_meeting_id"]

    ada = _api(zoom_server, create_creator, "creator@example.com")
    link_creator(zoom_server.app, fake_zoom)  # Ada has a Zoom user of her own: that is not enough
    free = _draft(ada, price=0, zoom_meeting_id=bea_meeting)
    status, body = _publish(ada, free)
    assert status == 422 and body["fields"]["zoom_meeting_id"].startswith(NOT_YOURS)
    assert ada.get(f"/api/v1/sessions/{free}")[1]["status"] == "draft"
    signup = Api(zoom_server.url).post(f"/api/v1/sessions/{free}/checkout", {"name": "Eve", "email": "eve@example.com"})
    assert signup[0] == 404
    assert fake_zoom.registrants_of(bea_meeting) == []

    # Nor by moving a published session of hers onto Bea's meeting.
    own = _draft(ada, price=0, zoom_meeting_id=fake_zoom.add_meeting())
    assert _publish(ada, own)[0] == 200
    status, body = ada.patch(f"/api/v1/sessions/{own}", {"zoom_meeting_id": bea_meeting})
    assert status == 422 and body["fields"]["zoom_meeting_id"].startswith(NOT_YOURS)
    assert ada.get(f"/api/v1/sessions/{own}")[1]["zoom_meeting_id"] != bea_meeting


def test_the_refusal_does_not_tell_whether_a_meeting_exists(zoom_server, create_creator, fake_zoom):
    bea = _api(zoom_server, create_creator, "bea@example.com")
    bea_user = link_creator(zoom_server.app, fake_zoom, "bea@example.com")
    bea_hosts = fake_zoom.add_meeting(host=bea_user["id"])  # Bea has not used it yet
    scheduled = _publish(bea, _draft(bea))[1]["zoom_meeting_id"]
    ada = _api(zoom_server, create_creator, "creator@example.com")
    link_creator(zoom_server.app, fake_zoom)
    account_owners = fake_zoom.add_meeting(host="host@example.com")

    cases = {"nonexistent": "98765432101", "scheduled for Bea": scheduled, "hosted by Bea's Zoom user": bea_hosts,
             "hosted by someone else": account_owners}  # fmt: skip
    answers = {case: _publish(ada, _draft(ada, zoom_meeting_id=meeting_id)) for case, meeting_id in cases.items()}
    assert len({repr(answer) for answer in answers.values()}) == 1, answers
    status, body = answers["nonexistent"]
    assert status == 422 and body["error"] == "validation_error"
    assert body["fields"]["zoom_meeting_id"].startswith(NOT_YOURS)
    assert "linked on your profile" in body["fields"]["zoom_meeting_id"]

    # Webinars say so in the same words.
    webinar = _publish(ada, _draft(ada, zoom_meeting_id=fake_zoom.add_meeting("webinar", host=bea_user["id"]),
                                   zoom_kind="webinar"))  # fmt: skip
    unknown = _publish(ada, _draft(ada, zoom_meeting_id="98765432102", zoom_kind="webinar"))
    assert webinar == unknown and unknown[1]["fields"]["zoom_meeting_id"].startswith("You have no Zoom webinar")


def test_a_creator_sells_the_meetings_their_zoom_user_hosts_in_as_many_sessions_as_they_like(
    zoom_server, create_creator, fake_zoom
):
    ada = _api(zoom_server, create_creator, "creator@example.com")
    unlinked = fake_zoom.add_meeting()  # hosted by the account owner, as long as Ada has no Zoom user
    status, body = _publish(ada, _draft(ada, zoom_meeting_id=unlinked))
    assert status == 422 and body["fields"]["zoom_meeting_id"].startswith(NOT_YOURS)

    link_creator(zoom_server.app, fake_zoom)
    weekly = fake_zoom.add_meeting(recurring=True)
    first = _draft(ada, zoom_meeting_id=weekly)
    second = _draft(ada, zoom_meeting_id=weekly)
    assert _publish(ada, first)[0] == 200 and _publish(ada, second)[0] == 200
    with zoom_server.app.app_context():
        owned = db.session.execute(select(ZoomMeeting.meeting_id, ZoomMeeting.origin)).all()
    assert owned == [(weekly, "host")]

    # Once hers, the meeting stays hers: another creator the operator links later to that Zoom user cannot take it.
    bea = _api(zoom_server, create_creator, "bea@example.com")
    with zoom_server.app.app_context():
        hosted_by = _zoom_user_of(zoom_server, "creator@example.com")
        link_zoom_user(find_creator("creator@example.com"), None)
        link_zoom_user(find_creator("bea@example.com"), hosted_by, by_operator=True)
    status, body = _publish(bea, _draft(bea, zoom_meeting_id=weekly))
    assert status == 422 and body["fields"]["zoom_meeting_id"].startswith(NOT_YOURS)


def test_two_creators_publishing_one_meeting_id_at_once_get_one_owner(live_server, create_creator):
    server = live_server(demo=True)  # the demo stand-in has no hosts: only the app's own record decides
    creators = [_api(server, create_creator, f"c{i}@example.com") for i in range(2)]
    for round_ in range(3):
        meeting_id = f"5551234567{round_}"
        drafts = [_draft(api, zoom_meeting_id=meeting_id) for api in creators]
        barrier = threading.Barrier(2)
        answers: dict[int, tuple[int, dict]] = {}

        def publish(index: int, drafts=drafts, barrier=barrier, answers=answers) -> None:
            barrier.wait()
            answers[index] = _publish(creators[index], drafts[index])

        threads = [threading.Thread(target=publish, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(status for status, _body in answers.values()) == [200, 422], answers
        [(winner, _ok)] = [(i, body) for i, (status, body) in answers.items() if status == 200]
        [refused] = [body for status, body in answers.values() if status == 422]
        assert refused["fields"]["zoom_meeting_id"].startswith(NOT_YOURS)
        with server.app.app_context():
            owners = db.session.scalars(select(ZoomMeeting.creator_id).where(ZoomMeeting.meeting_id == meeting_id))
            winner_id = db.session.scalar(select(Creator.id).where(Creator.email == f"c{winner}@example.com"))
            assert list(owners) == [winner_id]


def test_demo_mode_publishes_zoom_sessions_and_links_the_creators_own_email(live_server, create_creator):
    server = live_server(demo=True)
    ada = _api(server, create_creator, "creator@example.com")
    scheduled = _draft(ada)
    status, body = _publish(ada, scheduled)
    assert status == 200 and len(body["zoom_meeting_id"]) == 11
    assert _publish(ada, _draft(ada, zoom_meeting_id="12345678901"))[0] == 200
    browser = Browser(server.url, "creator@example.com")
    assert browser.save_profile(zoom_user="Creator@Example.com").status_code == 200
    assert _zoom_user_of(server, "creator@example.com").startswith("demo-")


# -- linking a Zoom user -------------------------------------------------------------------------------------------


def test_a_creator_links_only_the_zoom_user_with_their_login_email(zoom_server, create_creator, fake_zoom):
    create_creator(email="creator@example.com")
    own = fake_zoom.add_user("creator@example.com", status="pending")  # invited: Zoom shows no email for it yet
    colleague = fake_zoom.add_user("colleague@example.com")
    browser = Browser(zoom_server.url, "creator@example.com")

    refusals = {}
    cases = {"someone else's email": "colleague@example.com", "someone else's id": colleague["id"],
             "nobody": "nobody@example.com", "not a user id": "no such/user",
             "own user, not activated": "creator@example.com"}  # fmt: skip
    for case, zoom_user in cases.items():
        response = browser.save_profile(zoom_user=zoom_user, name="Renamed")
        assert response.status_code == 422, case
        refusals[case] = html.unescape(response.text.split('id="zoom_user-error">')[1].split("</p>")[0])
    assert len(set(refusals.values())) == 1, refusals
    assert "its email must be your login email, creator@example.com" in refusals["nobody"]
    assert _zoom_user_of(zoom_server, "creator@example.com") is None
    assert "Renamed" not in browser.web.get(zoom_server.url + "/dashboard/profile", timeout=10).text

    fake_zoom.users[own["id"]]["status"] = "active"  # the invitation was accepted
    saved = browser.save_profile(zoom_user="  CREATOR@example.com ")
    assert saved.status_code == 200 and "Profile saved." in saved.text
    assert _zoom_user_of(zoom_server, "creator@example.com") == own["id"]
    assert f"Linked: Zoom user {own['id']} (creator@example.com)" in saved.text

    # Saving again asks Zoom nothing: the linked user is known, also when typed as its id.
    asked = len(fake_zoom.calls("GET", "/users/creator@example.com")) + len(fake_zoom.calls("GET", own["id"]))
    assert browser.save_profile(zoom_user=own["id"], name="Ada T.").status_code == 200
    assert browser.save_profile(zoom_user="creator@example.com").status_code == 200
    assert len(fake_zoom.calls("GET", "/users/creator@example.com")) + len(fake_zoom.calls("GET", own["id"])) == asked

    assert browser.save_profile(zoom_user="").status_code == 200  # unlinked
    assert _zoom_user_of(zoom_server, "creator@example.com") is None


def test_linking_while_zoom_is_down_keeps_the_form_and_changes_nothing(zoom_server, create_creator, fake_zoom):
    create_creator(email="creator@example.com")
    fake_zoom.add_user("creator@example.com")
    browser = Browser(zoom_server.url, "creator@example.com")
    fake_zoom.down = True
    response = browser.save_profile(zoom_user="creator@example.com", name="Renamed")
    assert response.status_code == 503
    assert "Zoom could not be reached" in response.text and 'value="Renamed"' in response.text
    assert _zoom_user_of(zoom_server, "creator@example.com") is None
    fake_zoom.down = False
    assert browser.save_profile(zoom_user="creator@example.com").status_code == 200
    assert _zoom_user_of(zoom_server, "creator@example.com") is not None


def _flask(*args: str, database_url: str, fake_zoom) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "WEBINAR_PAY_ENV": "test", "SCHEDULER_ENABLED": "0",
           **{name: value for name, value in fake_zoom.config().items()}}  # fmt: skip
    env.pop("STRIPE_SECRET_KEY", None)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.slow
def test_the_operator_links_any_zoom_user_and_each_zoom_user_has_one_creator(
    zoom_server, create_creator, fake_zoom, database_url
):
    ada = _api(zoom_server, create_creator, "creator@example.com")
    create_creator(email="bea@example.com")
    team = fake_zoom.add_user("workshops@example.org")  # a shared team address: no creator has it as login

    linked = _flask("creators", "link-zoom", "creator@example.com", "workshops@example.org",
                    database_url=database_url, fake_zoom=fake_zoom)  # fmt: skip
    assert linked.returncode == 0, linked.stderr
    assert f"to Zoom user {team['id']} <workshops@example.org>" in linked.stdout
    assert _zoom_user_of(zoom_server, "creator@example.com") == team["id"]
    assert _publish(ada, _draft(ada, zoom_meeting_id=fake_zoom.add_meeting(host=team["id"])))[0] == 200

    twice = _flask("creators", "link-zoom", "bea@example.com", team["id"], database_url=database_url,
                   fake_zoom=fake_zoom)  # fmt: skip
    assert twice.returncode != 0 and "linked to another creator" in twice.stderr
    unknown = _flask("creators", "link-zoom", "bea@example.com", "ghost@example.org", database_url=database_url,
                     fake_zoom=fake_zoom)  # fmt: skip
    assert unknown.returncode != 0 and _zoom_user_of(zoom_server, "bea@example.com") is None

    # Bea's own login email is a Zoom user too, but the one linked to Ada stays Ada's through the profile page.
    fake_zoom.users[team["id"]]["email"] = "bea@example.com"
    response = Browser(zoom_server.url, "bea@example.com").save_profile(zoom_user="bea@example.com")
    assert response.status_code == 422 and "linked to another creator" in html.unescape(response.text)
    assert _zoom_user_of(zoom_server, "bea@example.com") is None


@pytest.mark.slow
def test_the_upgrade_gives_each_meeting_id_in_use_to_the_creator_of_its_first_published_session(tmp_path, fake_zoom):
    url = f"sqlite:///{tmp_path / 'upgrade.sqlite3'}"
    assert _flask("db", "upgrade", "0006_webhook_inbox", database_url=url, fake_zoom=fake_zoom).returncode == 0
    engine = create_engine(url)
    common = {"title": "t", "description": "", "starts_at": "2030-01-01 10:00:00", "timezone": "UTC",
              "duration_minutes": 60, "price": 0, "currency": "EUR", "capacity": 5, "seats_taken": 0,
              "platform": "zoom", "reminder_offsets": "[]", "created_at": "2029-01-01",
              "updated_at": "2029-01-01"}  # fmt: skip
    sessions = [
        {"id": 1, "creator_id": 2, "status": "draft", "zoom_meeting_id": "11111111111"},
        {"id": 2, "creator_id": 1, "status": "published", "zoom_meeting_id": "11111111111"},
        {"id": 3, "creator_id": 2, "status": "published", "zoom_meeting_id": "11111111111"},
        {"id": 4, "creator_id": 2, "status": "ended", "zoom_meeting_id": "22222222222"},
        {"id": 5, "creator_id": 1, "status": "draft", "zoom_meeting_id": "33333333333"},
    ]
    columns = [*sessions[0], *common]
    insert_session = text(
        f"INSERT INTO live_sessions ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    )
    insert_creator = text(
        "INSERT INTO creators (id, email, name, password_hash, role, timezone, created_at) "
        "VALUES (:id, :email, 'C', 'x', 'creator', 'UTC', '2029-01-01')"
    )
    with engine.begin() as connection:
        for creator_id in (1, 2):
            connection.execute(insert_creator, {"id": creator_id, "email": f"c{creator_id}@example.com"})
        for row in sessions:
            connection.execute(insert_session, {**row, **common})
    engine.dispose()
    assert _flask("db", "upgrade", database_url=url, fake_zoom=fake_zoom).returncode == 0
    with engine.connect() as connection:
        owners = connection.execute(text("SELECT meeting_id, creator_id, origin FROM zoom_meetings ORDER BY 1")).all()
    engine.dispose()
    assert owners == [("11111111111", 1, "migrated"), ("22222222222", 2, "migrated")]  # drafts were never checked
