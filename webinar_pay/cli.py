"""Command line: `flask --app app creators create …`, `tokens create …`, `worker`."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from .services import ValidationError
from .services.creators import create_api_token, create_creator, find_creator

creators_cli = AppGroup("creators", help="Manage creator accounts.")
tokens_cli = AppGroup("tokens", help="Manage API tokens.")


@creators_cli.command("create")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--password", required=True, help="At least 10 characters.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone, e.g. Europe/Paris.")
def create_creator_command(email: str, name: str, password: str, timezone: str) -> None:
    """Create a creator account."""
    try:
        creator = create_creator(email, name, password, timezone)
    except ValidationError as error:
        raise click.ClickException("; ".join(f"{field}: {text}" for field, text in error.fields.items())) from None
    click.echo(f"created creator {creator.id} <{creator.email}>")


@tokens_cli.command("create")
@click.argument("email")
def create_token_command(email: str) -> None:
    """Create an API token for a creator; the token is printed once, as the last line."""
    creator = find_creator(email)
    if creator is None:
        raise click.ClickException(f"no creator with email {email}")
    token = create_api_token(creator)
    click.echo(f"API token for {creator.email} (shown once, store it now):")
    click.echo(token)


@click.command("worker")
def worker_command() -> None:
    """Run the scheduler ticks (holds, refunds, reconciliation) in the foreground."""
    from flask import current_app

    from .scheduler import run_forever

    run_forever(current_app._get_current_object())


@click.command("tick")
def tick_command() -> None:
    """Run every scheduler job once and exit."""
    from .scheduler import tick

    for job, result in tick().items():
        click.echo(f"{job}: {result}")


def init_app(app: Flask) -> None:
    app.cli.add_command(creators_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(tick_command)
