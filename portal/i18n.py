"""Languages of the resident's pages: Indonesian (default), English and Balinese.

Built on Babel's message catalogs. Flask-Babel is not used because it parses
every locale through CLDR, which has no ``ban`` (Balinese): ``Locale.parse('ban')``
raises. Catalogs are read from the ``.po`` sources at start-up, so there is no
compile step to forget; dates and numbers for ``ban`` use Indonesian rules.
"""
from __future__ import annotations

from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.dates import format_date as _format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations
from flask import Flask, current_app, g, has_request_context, request
from jinja2 import pass_context
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LANGUAGES = ("id", "en", "ban")
#: Names shown in the language switch, each in its own language.
LANGUAGE_NAMES = {"id": "Bahasa Indonesia", "en": "English", "ban": "Basa Bali"}
#: CLDR locale used to format dates and numbers for each language.
FORMAT_LOCALE = {"id": "id", "en": "en", "ban": "id"}
CATALOG_DIR = Path(__file__).resolve().parent.parent / "landing_pages" / "translations"
EXTENSION = "portal_i18n"


def load_catalogs(directory: Path = CATALOG_DIR, *, domain: str = "messages",
                  languages=LANGUAGES) -> dict[str, NullTranslations]:
    """Read ``<lang>/LC_MESSAGES/<domain>.po`` for each language into Translations (no compile step)."""
    catalogs: dict[str, NullTranslations] = {}
    for lang in languages:
        path = directory / lang / "LC_MESSAGES" / f"{domain}.po"
        if not path.exists():
            catalogs[lang] = NullTranslations()
            continue
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=FORMAT_LOCALE[lang])
        buffer = BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        catalogs[lang] = Translations(fp=buffer)
    return catalogs


def choose_language(explicit: str | None = None) -> str:
    """Pick the language: an explicit choice, else ``Accept-Language``, else the default."""
    if explicit in LANGUAGES:
        return explicit
    best = accepted_language(request.environ.get("HTTP_ACCEPT_LANGUAGE", "")) if has_request_context() else None
    return best or current_app.config["DEFAULT_LANGUAGE"]


@lru_cache(maxsize=256)
def accepted_language(accept_language: str) -> str | None:
    """The best of our languages for an ``Accept-Language`` value, or None (phones send a few values)."""
    if not accept_language:
        return None
    return parse_accept_header(accept_language, LanguageAccept).best_match(LANGUAGES)


def current_language() -> str:
    """Return the language of the current request."""
    if has_request_context() and "lang" in g:
        return g.lang
    return current_app.config["DEFAULT_LANGUAGE"]


def gettext(message: str, **variables) -> str:
    """Translate *message* into the current language and fill ``%(name)s`` variables."""
    text = current_app.extensions[EXTENSION][current_language()].ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    """Translate a message with a plural form."""
    text = current_app.extensions[EXTENSION][current_language()].ungettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


def lazy_gettext(message: str, **variables) -> LazyProxy:
    """Translate *message* when it is rendered, not when it is defined."""
    return LazyProxy(gettext, message, enable_cache=False, **variables)


def format_date(value, form: str = "long") -> str:
    """Format a date the way the current language writes it."""
    return _format_date(value, format=form, locale=FORMAT_LOCALE[current_language()])


def init_app(app: Flask) -> None:
    """Load the catalogs and install them into Jinja."""
    app.extensions[EXTENSION] = load_catalogs()
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext, ngettext, newstyle=True)
    app.jinja_env.filters["format_date"] = format_date
    from landing_pages import theme_css

    app.jinja_env.globals.update(lang_url=lang_url, theme_css=theme_css)

    @app.context_processor
    def language_context():
        return {"lang": current_language(),
                "languages": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]}


#: Session pages that a language link may show again; any other session page (a receipt, a
#: grant) links to the session's landing page instead.
SESSION_PAGES = frozenset({"splash.landing", "complaints.complaint_form"})


@pass_context
def lang_url(context, code: str) -> str:
    """URL of the current page in language *code*, built only from what this page shows.

    On a session's pages the link names the session of the page being rendered (its
    ``visit`` and ``fallback``), never the request's own path or query: the landing page is
    rendered once and served to every resident of a site, and a link built from the first
    request would hand its token (or a GET arrival's MAC) to everyone after.
    """
    from flask import url_for

    visit = context.get("visit")
    if visit is not None:
        endpoint = request.endpoint if request.method == "GET" and request.endpoint in SESSION_PAGES else "splash.landing"
        return url_for(endpoint, token=visit.token, lang=code, fb=context.get("fallback") or None)
    if request.method == "GET" and request.endpoint:
        # A page outside any session (status, privacy): its path, and only the arguments its
        # view vouched for (g.lang_args), never the visitor's query as such.
        args = {**(request.view_args or {}), **g.get("lang_args", {})}
        return _cached_url(request.endpoint, args, code)
    return _cached_url("status.lookup", {}, code)


LANG_URL_CACHE_SIZE = 4096


def _cached_url(endpoint: str, args: dict, code: str) -> str:
    """``url_for(endpoint, **args, lang=code)``, remembered: building it costs more than the page's other links.

    The key is everything the URL is made of, so a cached URL is the one this request would build.
    """
    from flask import url_for

    key = (request.script_root, endpoint, tuple(sorted(args.items())), code)
    cache = current_app.extensions.setdefault("portal_lang_urls", {})
    url = cache.get(key)
    if url is None:
        if len(cache) >= LANG_URL_CACHE_SIZE:
            cache.clear()
        url = cache[key] = url_for(endpoint, **args, lang=code)
    return url
