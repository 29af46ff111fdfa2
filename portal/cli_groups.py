"""The CLI's command groups, on their own so that every module adding commands can import them."""
from __future__ import annotations

from flask.cli import AppGroup

sites_cli = AppGroup("sites", help="The site registry.")
spool_cli = AppGroup("spool", help="The local spool of writes made while Redis was down.")
keys_cli = AppGroup("keys", help="Secrets for the environment.")
