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
        _fill_from_dev_env(app)
    else:
        app.config.update(test_config)
    _check_secrets(app)
    if app.logger.level == logging.NOTSET:
        # Module loggers (portal.*) propagate to Flask's handler on the "portal" logger.
        app.logger.setLevel(logging.INFO)

    from . import crypto, i18n, redis
    from .sites import SiteCache
    from .spool import Spool

    redis.init_app(app)
    crypto.init_app(app)
    i18n.init_app(app)
    app.extensions["portal_sites"] = SiteCache()
    app.extensions["portal_spool"] = Spool(os.path.join(app.config["VAR_DIR"], "spool"))

    from . import captive, cli, errors, headers, radius_api, splash, status
    from .complaints import views as complaint_views

    app.register_blueprint(splash.bp)
    app.register_blueprint(complaint_views.bp)
    app.register_blueprint(status.bp)
    app.register_blueprint(captive.bp)
    app.register_blueprint(radius_api.bp)
    from . import gateway_routes

    app.register_blueprint(gateway_routes.bp)
    from . import gateway_api

    app.register_blueprint(gateway_api.bp)  # authmon, WiFiDog auth/ping/portal, heartbeats (issue 3)
    errors.init_app(app)
    headers.init_app(app)
    from . import limits

    limits.init_app(app)  # per-client request limits and the 429 page (issue 10)
    cli.init_app(app)
    from . import delivery

    delivery.init_app(app)  # worker CLI, receiver callbacks, /metrics (issue 4)
    from . import results

    results.init_app(app)  # funnel, A/B, fleet health, open data, DSR, retention (issue 13)
    from . import campaigns, studio

    campaigns.init_app(app)  # published campaigns for the landing, campaign images (issue 11)
    studio.init_app(app)  # the campaign studio for staff at /studio, and `flask staff create` (issue 11)
    from . import compress

    compress.init_app(app)  # gzip for clients that accept it (issue 14)
    from . import fast_lane

    fast_lane.init_app(app)  # the landing again and the status page without Flask's per-request work (issue 14)
    if app.config["PROXY_COUNT"]:  # outermost: the lane and the app both see the client's own address
        n = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)
    cli.guard_commands(app.cli)  # last: covers every group registered above
    return app


def _fill_from_dev_env(app: Flask) -> None:
    """Under the flask CLI, use what `make run` keeps in var/ for whatever the environment lacks."""
    from . import cli, dev_env

    if not cli.running():
        return  # gunicorn and the worker get their settings from the environment only
    try:
        dev_env.fill_cli_config(app.config, notify=cli.note)
    except RuntimeError as error:
        cli.refuse(f"{error}; or set PORTAL_REDIS_URL to a running Redis")


def _check_secrets(app: Flask) -> None:
    from . import cli

    missing = [k for k in ("SECRET_KEY", "DEVICE_KEY", "DATA_KEYS") if not app.config.get(k)]
    if missing:
        names = ", ".join(f"PORTAL_{k}" for k in missing)
        cli.refuse(f"{names} must be set in the environment (see deploy/portal.env.example), "
                   "or run `make run` once in this checkout for development ones in var/")
    if not app.config.get("REDIS_URL"):
        cli.refuse("PORTAL_REDIS_URL must be set (any Redis 6.2+), "
                   "or run `make run` once in this checkout for the embedded one")
