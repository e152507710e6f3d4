"""The languages people read the app in."""

from __future__ import annotations

from typing import Any

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES = ("en", "fr")
# What each language is called in itself, for the language switch.
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}


def supported(value: Any) -> str | None:
    """`value` if it is one of SUPPORTED_LOCALES, else None."""
    return value if isinstance(value, str) and value in SUPPORTED_LOCALES else None
