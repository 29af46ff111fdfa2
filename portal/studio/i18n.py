"""The studio's own message catalog (domain ``studio``): Indonesian by default, English available.

Staff pages are not resident pages, so their strings live apart from the residents'
catalog (which must also exist in Balinese): ``landing_pages/translations/<lang>/
LC_MESSAGES/studio.po``, read at start-up like the residents' catalogs. Studio code and
templates translate with ``s_``; ``S_`` marks a message that is translated later.
"""
from __future__ import annotations

from babel.support import NullTranslations
from flask import current_app, g, has_request_context, request, session

from .. import i18n, staff_access
from ..i18n import CATALOG_DIR

LANGUAGES = ("id", "en")
NAMES = {"id": "Bahasa Indonesia", "en": "English"}
EXTENSION = "portal_studio_i18n"


def load_catalogs() -> dict[str, NullTranslations]:
    """Read ``<lang>/LC_MESSAGES/studio.po`` for each staff language."""
    return i18n.load_catalogs(CATALOG_DIR, domain="studio", languages=LANGUAGES)


def studio_language() -> str:
    """The staff member's language: this page's ``?lang=``, the session's choice, the account's, else Indonesian."""
    if not has_request_context() or not request.path.startswith("/studio"):
        return "id"  # outside the studio there is no staff session to read (StudioSessions)
    if "studio_lang" not in g:
        asked = request.args.get("lang")
        if asked in LANGUAGES:
            session["lang"] = asked
        chosen = session.get("lang")
        if chosen not in LANGUAGES:  # no choice made in this sign-in: the account's own language
            staff = staff_access.current()
            chosen = staff.lang if staff is not None and staff.lang in LANGUAGES else "id"
        g.studio_lang = chosen
    return g.studio_lang


def s_(message: str, **variables) -> str:
    """Translate a studio message into the staff member's language."""
    text = current_app.extensions[EXTENSION][studio_language()].ugettext(message)
    return text % variables if variables else text


def studio_lang_url(code: str) -> str:
    """This page in language *code*, keeping a GET page's own arguments (a preview's site and time)."""
    from urllib.parse import urlencode

    if request.method != "GET":
        return "?" + urlencode({"lang": code})
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"] + [("lang", code)]
    return request.path + "?" + urlencode(args)


def init_app(app) -> None:
    """Load the studio catalogs and give templates ``s_``."""
    app.extensions[EXTENSION] = load_catalogs()
    app.jinja_env.globals.update(s_=s_, studio_language=studio_language, studio_languages=NAMES,
                                 studio_lang_url=studio_lang_url)


def S_(message: str) -> str:
    """Mark *message* for the studio catalog; it is translated where it is shown."""
    return message
