"""English and French: the page's language (switch, cookie, Accept-Language, `<html lang>`), the buyer's language and
time zone kept on the order at checkout, the providers' pages opened in it, and every email of the order sent in
it by the worker; the creator's own emails in the creator's language."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from flask_mail import Message  # noqa: F401 - the records below are Flask-Mail's
from sqlalchemy import select, update

from tests.conftest import PASSWORD, LiveShop, csrf_in, paypal_order_id, stripe_session_id
from tests.test_web import account_email, log_in
from webinar_pay.extensions import db, mail
from webinar_pay.models import Creator, LiveSession, Order, utcnow
from webinar_pay.services.refunds import alert_dispute

FRENCH = "fr-FR,fr;q=0.9,en;q=0.5"
ENGLISH = "en-GB,en;q=0.9"
# Sentences of the journey in English; none may reach a French buyer.
ENGLISH_WORDS = ["Get your seat", "Your name", "Pay ", "Hello", "You are in", "Your seat", "Join the session",
                 "Questions?", "Your ticket", "That is", "Duration"]  # fmt: skip
FRENCH_WORDS = ["Réservez", "Votre", "Bonjour", "C’est confirmé", "Rejoindre", "Soit ", "Durée", "heure"]


def html_lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)">', page)[1]


def test_the_page_follows_accept_language_and_says_so_in_html_lang(client, published_session):
    session_id, _api = published_session()
    french = client.get(f"/s/{session_id}", headers={"Accept-Language": FRENCH}).get_data(as_text=True)
    assert html_lang(french) == "fr"
    assert "Réservez votre place" in french and "Payer 25,00\u00a0€" in french
    assert "Get your seat" not in french and "Your time" not in french
    for accept in ("de-DE,de;q=0.9", "", "*", "x" * 300):
        english = client.get(f"/s/{session_id}", headers={"Accept-Language": accept}).get_data(as_text=True)
        assert html_lang(english) == "en", accept
        assert "Get your seat" in english and "Réservez" not in english


def test_the_switch_is_remembered_and_returns_only_to_a_local_page(client, published_session):
    session_id, _api = published_session()
    page = client.get(f"/s/{session_id}", headers={"Accept-Language": ENGLISH}).get_data(as_text=True)
    assert f'href="/lang/fr?next=/s/{session_id}"' in page and "Français" in page

    answer = client.get(f"/lang/fr?next=/s/{session_id}")
    assert answer.status_code == 303 and answer.headers["Location"] == f"/s/{session_id}"
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("lang=fr;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get(f"/s/{session_id}", headers={"Accept-Language": ENGLISH}).get_data(as_text=True)
    assert html_lang(page) == "fr" and "Réservez votre place" in page
    assert f'href="/lang/en?next=/s/{session_id}"' in page

    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "", "x"):
        answer = client.get("/lang/en", query_string={"next": target})
        assert (answer.status_code, answer.headers["Location"]) == (303, "/"), target
    assert client.get("/lang/de?next=/").status_code == 404
    client.set_cookie("lang", "de")
    assert html_lang(client.get("/", headers={"Accept-Language": FRENCH}).get_data(as_text=True)) == "fr"


class Shop(LiveShop):
    def buy_on_the_page(self, session_id: int, accept: str, zone: str = "", email: str = "bo@example.com") -> dict:
        """A buyer fills the sales page as their browser shows it; returns the provider's page it sends them to."""
        browser = requests.Session()
        browser.headers["Accept-Language"] = accept
        page = browser.get(f"{self.url}/s/{session_id}", timeout=10).text
        locale = re.search(r'name="locale" value="(\w+)"', page)[1]
        form = {"csrf_token": csrf_in(page), "name": "Bo Buyer", "email": email, "provider": self.provider,
                "locale": locale, "timezone": zone}  # fmt: skip
        answer = browser.post(f"{self.url}/s/{session_id}/checkout", data=form, allow_redirects=False, timeout=30)
        assert answer.status_code == 303, answer.text
        return {"checkout_url": answer.headers["Location"], "order_id": self.last_order_id()}

    def last_order_id(self) -> int:
        return self.db(lambda: db.session.scalar(select(Order.id).order_by(Order.id.desc()).limit(1)))

    def pay_by_card(self, checkout: dict) -> None:
        assert self.webhook(self.stripe.complete_session(stripe_session_id(checkout))) == "paid"


@pytest.fixture
def shop(live_server, create_creator, fake_stripe, smtp) -> Shop:
    return Shop(live_server(**smtp.config), create_creator()[1], stripe=fake_stripe)


def test_a_french_buyer_gets_french_everywhere_and_an_english_buyer_of_the_same_session_english(shop, smtp):
    starts = (utcnow() + timedelta(days=3)).replace(second=0, microsecond=0)
    session_id = shop.session(price=4000, currency="USD", starts_at=starts.isoformat(), timezone="Europe/Paris")

    french = shop.buy_on_the_page(session_id, FRENCH, zone="America/Toronto", email="fr@example.com")
    assert shop.stripe.session_params[stripe_session_id(french)]["locale"] == "fr"
    shop.pay_by_card(french)
    english = shop.buy_on_the_page(session_id, ENGLISH, email="en@example.com")
    assert shop.stripe.session_params[stripe_session_id(english)]["locale"] == "en"
    shop.pay_by_card(english)
    assert {key: shop.order(french["order_id"])[key] for key in ("locale", "timezone")} == {
        "locale": "fr", "timezone": "America/Toronto"}  # fmt: skip
    assert {key: shop.order(english["order_id"])[key] for key in ("locale", "timezone")} == {
        "locale": "en", "timezone": None}  # fmt: skip

    assert shop.dispatch(utcnow()).sent == 2
    [mail_fr], [mail_en] = smtp.to("fr@example.com"), smtp.to("en@example.com")
    assert mail_fr.subject == "C’est confirmé\u00a0: Watercolour basics"
    toronto = starts.astimezone(ZoneInfo("America/Toronto")).strftime("%H:%M")
    paris = starts.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M")
    for body in (mail_fr.text, mail_fr.html):
        assert "Bonjour Bo Buyer," in body and "40,00\u00a0$US" in body
        assert "Votre heure\u00a0: " in body and toronto in body and paris in body
        assert "heure normale de l’Est" in body or "heure d’été de l’Est" in body
        for words in ENGLISH_WORDS:
            assert words not in body, words
    assert '<html lang="fr">' in mail_fr.html
    assert mail_en.subject == "You are in: Watercolour basics"
    for body in (mail_en.text, mail_en.html):
        assert "Hello Bo Buyer," in body and "Your time:" not in body
        for words in FRENCH_WORDS:
            assert words not in body, words

    # The ticket pages follow their order's language, whatever the browser reading them says.
    with shop.app.test_request_context():
        from webinar_pay.services.tickets import ticket_url

        urls = shop.db(lambda: [ticket_url(db.session.get(Order, o["order_id"])) for o in (french, english)])
    page_fr = requests.get(urls[0], headers={"Accept-Language": ENGLISH}, timeout=10).text
    page_en = requests.get(urls[1], headers={"Accept-Language": FRENCH}, timeout=10).text
    assert html_lang(page_fr) == "fr" and "C’est confirmé" in page_fr and "payée" in page_fr
    assert html_lang(page_en) == "en" and "You're in!" in page_en and "Réservez" not in page_en


def test_api_checkout_takes_locale_and_timezone_or_accept_language(shop):
    session_id = shop.session()
    buyer = {"name": "Bo", "email": "bo@example.com", "locale": "fr", "timezone": "Asia/Tokyo"}
    status, body = shop.buyer.post(f"/api/v1/sessions/{session_id}/checkout", buyer)
    assert status == 201, body
    assert shop.stripe.session_params[stripe_session_id(body)]["locale"] == "fr"
    assert (shop.order(body["order_id"])["locale"], shop.order(body["order_id"])["timezone"]) == ("fr", "Asia/Tokyo")

    url = f"{shop.url}/api/v1/sessions/{session_id}/checkout"
    answer = requests.post(url, json={"name": "Cy", "email": "cy@example.com"}, headers={"Accept-Language": FRENCH},
                           timeout=30)  # fmt: skip
    assert answer.status_code == 201 and shop.order(answer.json()["order_id"])["locale"] == "fr"

    wrong = {"name": "Di", "email": "di@example.com", "locale": "de", "timezone": "Mars/Base"}
    refused = requests.post(url, json=wrong, headers={"Accept-Language": FRENCH}, timeout=30).json()
    assert refused["error"] == "validation_error"
    assert refused["fields"] == {"locale": "Choisissez parmi\u00a0: en, fr.",
                                 "timezone": "Choisissez un fuseau horaire IANA comme Europe/Paris."}  # fmt: skip
    for value in (["fr"], 7, "x" * 65, "Europe/Paris\x00"):
        answer = requests.post(url, json={"name": "Di", "email": "di@example.com", "timezone": value}, timeout=30)
        assert answer.status_code == 422 and "timezone" in answer.json()["fields"], value


def test_paypal_opens_in_the_buyers_language(live_server, create_creator, paypal_config, fake_paypal):
    shop = Shop(live_server(demo=True, **paypal_config), create_creator()[1], provider="paypal", paypal=fake_paypal)
    session_id = shop.session()
    french = shop.buy_on_the_page(session_id, FRENCH)
    english = shop.buy_on_the_page(session_id, ENGLISH, email="en@example.com")
    assert fake_paypal.orders[paypal_order_id(french)]["_experience"]["locale"] == "fr-FR"
    assert fake_paypal.orders[paypal_order_id(english)]["_experience"]["locale"] == "en-US"


def test_a_zone_the_page_sends_that_we_do_not_know_is_left_out(shop):
    session_id = shop.session()
    checkout = shop.buy_on_the_page(session_id, FRENCH, zone="Mars/Olympus_Mons")
    assert shop.order(checkout["order_id"])["timezone"] is None


def test_the_creators_language_comes_from_sign_up_is_edited_on_the_profile_and_rules_their_emails(app, client):
    page = client.get("/signup", headers={"Accept-Language": FRENCH}).get_data(as_text=True)
    form = {"csrf_token": csrf_in(page), "name": "Ada", "email": "ada@example.com", "password": PASSWORD,
            "timezone": "Europe/Paris"}  # fmt: skip
    answer = client.post("/signup", data=form, headers={"Accept-Language": FRENCH})
    assert answer.status_code == 200 and "Consultez votre boîte de réception" in answer.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Creator.locale)) == "fr"
    confirm = account_email(app, "ada@example.com", "confirm_email")  # the creator's own email, in their language
    assert confirm.subject == "Confirmez votre adresse e-mail" and '<html lang="fr">' in confirm.html
    assert "Veuillez confirmer que ada@example.com est bien votre adresse" in confirm.text
    assert log_in(client, "ada@example.com", PASSWORD).status_code == 302

    page = client.get("/dashboard/profile", headers={"Accept-Language": ENGLISH}).get_data(as_text=True)
    assert html_lang(page) == "fr" and "Langue de vos e-mails" in page  # the account's language, then the browser's
    form = {"csrf_token": csrf_in(page), "name": "Ada", "timezone": "Europe/Paris", "locale": "en"}
    saved = client.post("/dashboard/profile", data=form)
    assert saved.status_code == 302 and "lang=en" in saved.headers["Set-Cookie"]
    page = client.get("/dashboard/profile").get_data(as_text=True)
    assert html_lang(page) == "en" and "Profile saved." in page
    form["locale"] = "de"
    refused = client.post("/dashboard/profile", data=form).get_data(as_text=True)
    assert "Choose a language from the list." in refused

    with app.app_context():
        creator = db.session.scalar(select(Creator))
        creator.locale = "fr"
        db.session.commit()
    _dispute_alert_language(app, client)


def _dispute_alert_language(app, client) -> None:
    from webinar_pay.models import LiveSession

    with app.app_context():
        creator = db.session.scalar(select(Creator))
        session = LiveSession(creator_id=creator.id, title="Aquarelle", starts_at=utcnow() + timedelta(days=2),
                              timezone="Europe/Paris", duration_minutes=60, price=2500, currency="EUR", capacity=5,
                              platform="link", status="published")  # fmt: skip
        db.session.add(session)
        db.session.flush()
        order = Order(session_id=session.id, name="Bo", email="bo@example.com", amount=2500, currency="EUR",
                      provider="stripe", status="disputed", token_nonce="0" * 32, locale="en")  # fmt: skip
        db.session.add(order)
        db.session.commit()
        with mail.record_messages() as outbox:
            alert_dispute(order, opened=True)  # as the worker does: no request, an English buyer
        [message] = outbox
        assert message.subject == "Paiement contesté\u00a0: Bo, «\u00a0Aquarelle\u00a0»"
        assert "a contesté son paiement de 25,00\u00a0€" in message.body


def test_a_state_named_in_an_error_is_in_the_readers_language(app, client, published_session):
    session_id, api = published_session()
    with app.app_context():
        db.session.execute(update(LiveSession).where(LiveSession.id == session_id).values(status="cancelled"))
        db.session.commit()
    headers = {"Authorization": f"Bearer {api.token}"}
    for accept, sentence in [(FRENCH, "Une session annulée ne peut pas être modifiée."),
                             (ENGLISH, "A cancelled session cannot be changed.")]:  # fmt: skip
        answer = client.patch(f"/api/v1/sessions/{session_id}", json={"title": "New"},
                              headers={**headers, "Accept-Language": accept})  # fmt: skip
        assert answer.status_code == 409 and answer.get_json()["message"] == sentence


def test_the_command_line_speaks_the_operators_language(app, monkeypatch):
    runner = app.test_cli_runner()
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    missing = runner.invoke(args=["tokens", "create", "nobody@example.com"])
    assert missing.exit_code == 1 and "aucun organisateur avec l’adresse nobody@example.com" in missing.output
    weak = runner.invoke(args=["creators", "create", "ada@example.com", "--name", "Ada", "--password", "short"])
    assert weak.exit_code == 1 and "Utilisez au moins 12" in weak.output  # the service's refusal, in French too
    created = runner.invoke(args=["creators", "create", "ada@example.com", "--name", "Ada", "--password", PASSWORD])
    assert created.exit_code == 0 and "organisateur" in created.output and "<ada@example.com>" in created.output

    monkeypatch.setenv("LANG", "C.UTF-8")
    token = runner.invoke(args=["tokens", "create", "ada@example.com"])
    assert token.exit_code == 0 and "API token for ada@example.com (shown once, store it now):" in token.output
    monkeypatch.setenv("LC_ALL", "fr_CA.UTF-8")  # LC_ALL wins over LANG
    token = runner.invoke(args=["tokens", "create", "ada@example.com"])
    assert token.exit_code == 0 and "Jeton d’API pour ada@example.com" in token.output
    assert token.output.strip().splitlines()[-1].startswith("wp_")  # the token stays the last line
