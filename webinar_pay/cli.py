"""Command line: `flask --app app creators create …`, `creators link-zoom …`, `creators reset-2fa …`,
`tokens create …`, `worker [--check]`, `tick`, `reconcile`, `webhooks`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from .services import ServiceError, ValidationError
from .services.accounts import end_all_sessions, reset_two_factor
from .services.creators import create_api_token, create_creator, find_creator, link_zoom_user, token_name

creators_cli = AppGroup("creators", help="Manage creator accounts.")
tokens_cli = AppGroup("tokens", help="Manage API tokens.")


@creators_cli.command("create")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--password", required=True, help="At least 12 characters, not a common password.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone, e.g. Europe/Paris.")
@click.option("--locale", default="en", show_default=True, help="Language of the creator's emails: en or fr.")
def create_creator_command(email: str, name: str, password: str, timezone: str, locale: str) -> None:
    """Create a creator account, its address taken as confirmed (the operator vouches for it)."""
    try:
        creator = create_creator(email, name, password, timezone, locale, verified=True)
    except ValidationError as error:
        raise click.ClickException("; ".join(f"{field}: {text}" for field, text in error.fields.items())) from None
    click.echo(f"created creator {creator.id} <{creator.email}>")


@creators_cli.command("link-zoom")
@click.argument("email")
@click.argument("zoom_user")
def link_zoom_command(email: str, zoom_user: str) -> None:
    """Link a creator to a user of the app's Zoom account (its id or email), whatever that user's email.

    Creators link only the Zoom user with their own login email on their profile page; this is for the others
    (a shared team address, a different login). The meetings that user hosts become the creator's to sell.
    """
    creator = find_creator(email)
    if creator is None:
        raise click.ClickException(f"no creator with email {email}")
    try:
        link_zoom_user(creator, zoom_user, by_operator=True)
    except ServiceError as error:
        raise click.ClickException(error.message) from None
    shown = f" <{creator.zoom_user_email}>" if creator.zoom_user_email else ""
    click.echo(f"linked creator {creator.email} to Zoom user {creator.zoom_user_id}{shown}")


@creators_cli.command("reset-2fa")
@click.argument("email")
def reset_two_factor_command(email: str) -> None:
    """Turn a creator's two-factor authentication off (a lost phone and lost recovery codes), and end their
    sessions. Check who is asking first: this leaves the account behind its password alone."""
    creator = find_creator(email)
    if creator is None:
        raise click.ClickException(f"no creator with email {email}")
    was_on = creator.has_two_factor
    reset_two_factor(creator)
    end_all_sessions(creator)
    state = "turned off" if was_on else "was already off; any unfinished set-up forgotten"
    click.echo(f"two-factor authentication for {creator.email}: {state}; every session of the account ended")


@tokens_cli.command("create")
@click.argument("email")
@click.option("--name", default="command line", show_default=True, help="How the account page lists the token.")
def create_token_command(email: str, name: str) -> None:
    """Create an API token for a creator; the token is printed once, as the last line."""
    creator = find_creator(email)
    if creator is None:
        raise click.ClickException(f"no creator with email {email}")
    try:
        token = create_api_token(creator, token_name(name))
    except ValidationError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"API token for {creator.email} (shown once, store it now):")
    click.echo(token)


@click.command("worker")
@click.option("--check", is_flag=True, help="Say when a worker last beat; exit 1 when none did lately, 0 otherwise.")
def worker_command(check: bool) -> None:
    """Run the scheduler ticks (webhooks, holds, refunds, enrolments, emails) in the foreground."""
    from flask import current_app

    if check:
        from sqlalchemy.exc import SQLAlchemyError

        from .services.heartbeat import worker_status

        try:
            status = worker_status()
        except SQLAlchemyError as error:
            click.echo(f"cannot read the worker heartbeats: {type(error).__name__} (is the database up and migrated?)")
            raise SystemExit(1) from None
        click.echo(status.describe())
        raise SystemExit(0 if status.ok else 1)

    from .scheduler import run_forever

    run_forever(current_app._get_current_object())


@click.command("tick")
def tick_command() -> None:
    """Run every scheduler job once and exit."""
    from .scheduler import tick

    for job, result in tick().items():
        click.echo(f"{job}: {result}")


@click.command("reconcile")
@with_appcontext
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC), inclusive.")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC), inclusive.")
def reconcile_command(start: datetime, end: datetime) -> None:
    """List payments where our records and the provider's disagree, for orders paid between two dates."""
    from .services.refunds import reconcile

    if end < start:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    mismatches = reconcile(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC) + timedelta(days=1))
    for m in mismatches:
        click.echo(f"order {m.order_id}\t{m.provider} {m.payment_ref}\t{m.problem}\tours: {m.ours}\ttheirs: {m.theirs}")
    click.echo(f"{len(mismatches)} differences between {start:%Y-%m-%d} and {end:%Y-%m-%d}")
    if mismatches:
        raise SystemExit(1)


@click.command("webhooks")
@with_appcontext
@click.option("--retry-now", is_flag=True, help="Make the failed ones due at once (once their cause is fixed).")
def webhooks_command(retry_now: bool) -> None:
    """List the payment webhooks received but not applied yet; exits 1 when some have failed."""
    from .models import utcnow
    from .services.inbox import retry_webhooks_now, waiting_webhooks

    if retry_now:
        click.echo(f"{retry_webhooks_now()} failed webhooks due again now")
    rows = waiting_webhooks()
    now = utcnow()
    for row in rows:
        age = int((now - row.received_at).total_seconds())
        state = f"failed {row.attempts}x, next try {row.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC: {row.last_error}"
        click.echo(f"{row.provider} {row.event_id}\treceived {age} s ago\t{state if row.attempts else 'waiting'}")
    failed = sum(1 for row in rows if row.attempts)
    click.echo(f"{len(rows)} webhooks waiting, {failed} of them failed")
    if failed:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(creators_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(tick_command)
    app.cli.add_command(reconcile_command)
    app.cli.add_command(webhooks_command)
