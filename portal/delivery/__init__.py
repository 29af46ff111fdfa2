"""Delivery of complaints to SP4N LAPOR! and the province's other channels.

- ``worker.py``     the Redis Streams consumer (``flask --app portal deliver``)
- ``channels/``     LAPOR! API, e-mail desk, signed webhook; ``settings.py`` reads which ones
- ``callbacks.py``  signed status changes from receivers; ``metrics.py`` queue depth
- ``retention.py``  erasure after delivery + retention, and ``rotate_complaints`` for key rotation
"""
from __future__ import annotations

from .retention import rotate_complaints


def init_app(app) -> None:
    """Register the callback and metrics endpoints and the operator commands."""
    from . import callbacks, cli, metrics

    app.register_blueprint(callbacks.bp)
    app.register_blueprint(metrics.bp)
    cli.init_app(app)


__all__ = ["init_app", "rotate_complaints"]
