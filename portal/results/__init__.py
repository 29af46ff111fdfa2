"""Results and fleet health (issue 13): the funnel, A/B results, fleet, open data, DSR, retention."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the results, fleet, data-subject and open-data pages and their CLI commands."""
    from . import cli, dsr_views, fleet_views, opendata, ops, views

    ops.init_app(app)

    app.register_blueprint(views.bp)
    app.register_blueprint(fleet_views.bp)
    app.register_blueprint(dsr_views.bp)
    app.register_blueprint(opendata.bp)
    app.cli.add_command(cli.results_cli)
