"""The captive portal's Flask application: ``create_app`` builds it."""
from __future__ import annotations

import logging
import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from landing_pages import TEMPLATES


def create_app(test_config: dict | None = None) -> Flask:
    """Create and configure the portal app."""
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=None)
    app.config.from_object("portal.config.Defaults")
    if test_config is None:
        app.config.from_prefixed_env("PORTAL")
    else:
        app.config.update(test_config)
    _check_secrets(app)
    if app.config["PROXY_COUNT"]:
        n = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    if not app.logger.handlers or not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from . import crypto, i18n, redis
    from .sites import SiteCache
    from .spool import Spool

    redis.init_app(app)
    crypto.init_app(app)
    i18n.init_app(app)
    app.extensions["portal_sites"] = SiteCache()
    app.extensions["portal_spool"] = Spool(os.path.join(app.config["VAR_DIR"], "spool"))

    from . import captive, cli, errors, splash, status
    from .complaints import views as complaint_views

    app.register_blueprint(splash.bp)
    app.register_blueprint(complaint_views.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(captive.bp)
    errors.init_app(app)
    cli.init_app(app)
    return app


def _check_secrets(app: Flask) -> None:
    missing = [k for k in ("SECRET_KEY", "DEVICE_KEY", "DATA_KEYS") if not app.config.get(k)]
    if missing:
        names = ", ".join(f"PORTAL_{k}" for k in missing)
        raise RuntimeError(f"{names} must be set in the environment (see deploy/portal.env.example)")
