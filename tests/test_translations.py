"""The French catalogue is whole and right: every message translated, none fuzzy, the same placeholders, French
typography, correct plural forms; and extracting the messages from the code finds none the catalogue lacks.

Each test lists every message it finds wrong, so that strings added in English show up at once, in one list.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "webinar_pay" / "translations"
FRENCH = TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]|%[sdif]")


def _catalogue(path: Path = FRENCH):
    with path.open("rb") as po:
        return read_po(po)


def _messages(catalogue) -> list:
    return [message for message in catalogue if message.id]


def _forms(value) -> tuple[str, ...]:
    return value if isinstance(value, tuple) else (value,)


def _show(problems: list[str]) -> str:
    return f"{len(problems)} message(s):\n" + "\n".join(f"  - {problem}" for problem in problems)


def test_the_catalogue_says_french_with_french_plurals():
    catalogue = _catalogue()
    assert str(catalogue.locale) == "fr"
    assert catalogue.plural_forms == "nplurals=2; plural=(n > 1);"
    assert not catalogue.fuzzy, "the catalogue's header is marked fuzzy: gettext would ignore the whole file"


def test_every_message_has_a_french_translation_that_is_not_fuzzy():
    problems = []
    for message in _messages(_catalogue()):
        forms = _forms(message.string)
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        elif not all(forms) or (message.pluralizable and len(forms) != 2):
            problems.append(f"untranslated: {message.id!r}")
    assert not problems, "Translate in webinar_pay/translations/fr/LC_MESSAGES/messages.po " + _show(problems)


def test_french_keeps_every_placeholder_and_adds_none():
    problems = []
    for message in _messages(_catalogue()):
        wanted = [sorted(PLACEHOLDER.findall(text)) for text in _forms(message.id)]
        for index, text in enumerate(_forms(message.string)):
            if not text:
                continue  # reported as untranslated
            expected = wanted[min(index, len(wanted) - 1)]
            if sorted(PLACEHOLDER.findall(text)) != expected:
                problems.append(f"{message.id!r}: {text!r} has {sorted(PLACEHOLDER.findall(text))}, wants {expected}")
    errors = [f"{message.id!r}: {'; '.join(map(str, found))}" for message, found in _catalogue().check() if found]
    assert not problems + errors, "Placeholders differ in " + _show(problems + errors)


def test_french_typography():
    """A no-break space (U+00A0 or the narrow U+202F) before : ; ? ! and inside « guillemets »; no "quotes"."""
    problems = []
    for message in _messages(_catalogue()):
        for text in _forms(message.string):
            if re.search(r" [:;?!»]|« ", text):
                problems.append(f"a plain space before punctuation in {text!r}")
            if re.search(r"[^\W\d_][;?!]|[^\W\d_]:(?:\s|$)|[)%]s?:\s", text.replace("%(", "(")):
                problems.append(f"no space before punctuation in {text!r}")
            if '"' in text:
                problems.append(f"English quotes in {text!r}: use « guillemets »")
    assert not problems, _show(problems)


@pytest.mark.parametrize("catalogue", [FRENCH, TRANSLATIONS / "messages.pot"], ids=["fr", "pot"])
def test_extracting_the_code_finds_no_message_the_catalogue_lacks(tmp_path, catalogue):
    """What `pybabel extract -F babel.cfg` finds in the code today, against the catalogue and the template: a new
    English message fails here until it is translated (and the template extracted again)."""
    extracted = tmp_path / "messages.pot"
    CommandLineInterface().run(
        ["pybabel", "--quiet", "extract", "-F", str(ROOT / "babel.cfg"), "-o", str(extracted), str(ROOT)]
    )
    known = {message.id for message in _messages(_catalogue(catalogue))}
    found = _messages(_catalogue(extracted))
    assert len(found) > 300, "the extraction found hardly anything: is babel.cfg right?"
    missing = [f"{message.id!r} ({', '.join(f'{path}:{line}' for path, line in message.locations)})"
               for message in found if message.id not in known]  # fmt: skip
    hint = (
        "Run `pybabel extract -F babel.cfg -o webinar_pay/translations/messages.pot .` and "
        "`pybabel update -i webinar_pay/translations/messages.pot -d webinar_pay/translations`, then translate. "
    )
    assert not missing, f"Not in {catalogue.name}: {hint}" + _show(missing)
