"""Entry point for `flask --app app …` and `gunicorn app:app`."""

from webinar_pay import create_app

app = create_app()
