"""The languages people read the app in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

DEFAULT_LOCALE = "en"
SUPPORTED_LOCALES = ("en", "fr")
# What each language is called in itself, for the language switch.
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}


def supported(value: Any) -> str | None:
    """`value` if it is one of SUPPORTED_LOCALES, else None."""
    return value if isinstance(value, str) and value in SUPPORTED_LOCALES else None


def operator_locale(environ: Mapping[str, str] = os.environ) -> str:
    """The command line's language, from the environment as POSIX programs read it (LC_ALL, LC_MESSAGES, then LANG:
    `fr_FR.UTF-8` is French); English for anything else."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return supported(value.split(".")[0].split("_")[0].lower()) or DEFAULT_LOCALE
    return DEFAULT_LOCALE
