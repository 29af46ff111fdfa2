"""Which campaign a resident sees. Today: the built-in SP4N LAPOR! campaign.

Kept behind one function so that published campaigns can be chosen per site
later without touching the resident journey; the built-in one is what shows
whenever nothing else applies or Redis is down.
"""
from __future__ import annotations

from landing_pages import CAMPAIGN_TEMPLATES, DEFAULT_CAMPAIGN


def campaign_for(site) -> str:
    """Return the id of the campaign to show at *site* (None for an unknown site)."""
    return DEFAULT_CAMPAIGN


def campaign_template(campaign_id: str) -> str:
    """Return the template of a campaign, falling back to the built-in one."""
    return CAMPAIGN_TEMPLATES.get(campaign_id, CAMPAIGN_TEMPLATES[DEFAULT_CAMPAIGN])
