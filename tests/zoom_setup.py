"""Setting a creator up on the fake Zoom account the way a creator does it: their own Zoom user, linked."""

from __future__ import annotations

from flask import Flask

from tests.fakes.fake_zoom import FakeZoom
from webinar_pay.services.creators import find_creator, link_zoom_user


def link_creator(app: Flask, fake_zoom: FakeZoom, email: str = "creator@example.com") -> dict:
    """A user with the creator's login email on the fake Zoom account, linked to the creator (checked with the
    fake Zoom, as the profile page does) and made the host of the meetings the test adds from now on."""
    user = fake_zoom.add_user(email)
    with app.app_context():
        link_zoom_user(find_creator(email), email)
    fake_zoom.default_host = user["id"]
    return user
