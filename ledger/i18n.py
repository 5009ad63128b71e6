"""The language of everything meant for a person, in one small module.

Messages are written once, in English, with named placeholders, and translated when shown:

    from ledger.i18n import _, ngettext
    _("lead {lead} is owned by {owner}", lead=lead.id, owner=lead.owner)
    ngettext("{n} lead recycled", "{n} leads recycled", n)
    LABELS = [N_("Owner"), N_("Pool")]   # marked where defined, gettext(label) where shown

The language is chosen once per process, on first use: `activate(lang)` (the `--lang` option)
wins, else LEADLEDGER_LANG, LC_ALL, LC_MESSAGES, LANG, the first that is set; a value that starts
with `zh` means Simplified Chinese, anything else English. Catalogues are read with the standard
library's gettext (Babel only extracts and compiles them, at development time).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
TYPE_CHECKING = False  # not typing's: it is not loaded by `verify-receipt` (commands/offline.py)
if TYPE_CHECKING:
    import gettext as _gettext
    from typing import Any

DOMAIN = "leadledger"
LANGUAGES = ("en", "zh")
LOCALE_DIR = Path(__file__).with_name("locale")
ENVIRONMENT = ("LEADLEDGER_LANG", "LC_ALL", "LC_MESSAGES", "LANG")

_active: English | _gettext.NullTranslations | None = None
_language = "en"


class English:
    """The messages as written (gettext's NullTranslations, without loading gettext)."""

    def gettext(self, message: str) -> str:
        return message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


def choose(explicit: str | None = None, environ: Any = None) -> str:
    """`zh` or `en`: the explicit choice, else the first of ENVIRONMENT that is set (non-empty)."""
    if explicit and explicit.lower().startswith(("zh", "en")):
        return "zh" if explicit.lower().startswith("zh") else "en"
    # none, or one we do not speak (`--lang fr`, refused as such): in the environment's language
    environ = os.environ if environ is None else environ
    for name in ENVIRONMENT:
        value = environ.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def activate(lang: str | None = None) -> str:
    """Make `lang` (or the environment's choice) the language of this process; returns it."""
    global _active, _language
    _language = choose(lang)
    if _language == "en":  # the messages as written: no catalogue to read
        _active = English()
    else:
        import gettext as _gettext  # noqa: PLC0415 - English, the default, needs none of it

        _active = _gettext.translation(DOMAIN, LOCALE_DIR, languages=[_language], fallback=True)
    translate_click()
    return _language


def from_argv(argv: list[str]) -> str | None:
    """The value of a `--lang` in a command line, if any (the last one, as click takes it).
    Read before click parses, so that its usage errors and `--help` are in that language too."""
    found = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--lang="):
            found = arg.partition("=")[2]
    return found


def language() -> str:
    _catalogue()
    return _language


def _catalogue() -> English | _gettext.NullTranslations:
    if _active is None:
        activate()
    return _active  # type: ignore[return-value]


def _(message: str, /, **values: Any) -> str:
    """The message in the active language, its `{name}` placeholders filled from `values`."""
    text = _catalogue().gettext(message)
    return text.format(**values) if values else text


def ngettext(singular: str, plural: str, n: int, /, **values: Any) -> str:
    """The singular or plural form for `n`, formatted with `n` and `values`."""
    return _catalogue().ngettext(singular, plural, n).format(n=n, **values)


def N_(message: str) -> str:
    """Mark a message kept as data (a table of labels, a help text in a list) for extraction;
    it is translated where it is shown, with `gettext(message)`."""
    return message


def gettext(message: str) -> str:
    """Plain translation, no formatting (for text that may hold braces, and for click)."""
    return _catalogue().gettext(message)


def _click_ngettext(singular: str, plural: str, n: int) -> str:
    return _catalogue().ngettext(singular, plural, n)


def translate_click() -> None:
    """click's own messages ("Missing option", "Usage:", "Show this message and exit.") go
    through `gettext.gettext` of the default domain, bound in each click module as `_` and
    `ngettext`. Point those names at our catalogue, which carries their translations, so that
    `--lang` governs them too. Only modules already imported are changed (this module never
    imports click: whoever imports it calls this); names already rebound, or renamed by a later
    click, are left alone."""
    if not any(name == "click" or name.startswith("click.") for name in sys.modules):
        return
    import gettext as _gettext  # noqa: PLC0415 - click has loaded it already

    for name, module in list(sys.modules.items()):
        if name == "click" or name.startswith("click."):
            if getattr(module, "_", None) is _gettext.gettext:
                module._ = gettext  # type: ignore[attr-defined]
            if getattr(module, "ngettext", None) is _gettext.ngettext:
                module.ngettext = _click_ngettext  # type: ignore[attr-defined]


def english(message: str, /, **values: Any) -> str:
    """The message in English whatever the language: for text stored in an event, which stays
    as it was recorded. Mark the msgid with `N_` so that `reword` can show it translated."""
    return message.format(**values) if values else message


_patterns: dict[str, Any] = {}


def reword(stored: str, templates: Any) -> str:
    """Text stored in English (an `english(template, ...)` of one of `templates`) in the active
    language: the template it was made from is found, its values read back and the translated
    template filled with them. Text made from none of them is shown as it was stored."""
    import re

    for template in templates:
        pattern = _patterns.get(template)
        if pattern is None:
            parts, seen, regex = re.split(r"\{(\w+)\}", template), set(), []
            for i, part in enumerate(parts):  # a name met again must match the same text again
                regex.append(re.escape(part) if i % 2 == 0 else f"(?P={part})" if part in seen else f"(?P<{part}>.+?)")
                seen.add(part)
            pattern = _patterns[template] = re.compile("".join(regex))
        found = pattern.fullmatch(stored)
        if found:
            return _(template, **found.groupdict())
    return stored
