"""Portal sessions: serialisation, fallback copies and tokens."""
from __future__ import annotations

import base64
import dataclasses
import json
import time

from hotspot_hooks import Arrival
from portal import sessions
from portal.redis import get_redis
from portal.sessions import PortalSession


def sample() -> PortalSession:
    arrival = Arrival(vendor="mikrotik", gateway_id="hs-1", client_mac="70:8A:09:65:4D:EC",
                      client_ip="10.5.50.2", original_url="http://example.com/", extra={"login_url": "http://10.5.50.1/login"})
    return PortalSession(token="t" * 24, arrival=arrival, site_id="BALI-0001", lang="ban", device="abc",
                         campaign="c", granted=1.5, minutes=30)


def test_to_dict_covers_every_field():
    names = {f.name for f in dataclasses.fields(PortalSession)} - {"token", "sealed"}
    assert set(sample().to_dict()) == names


def test_round_trip_through_json():
    session = sample()
    again = PortalSession.from_json(session.token, session.to_json())
    assert again == session


def test_a_session_stored_with_its_complaint_numbers_still_opens():
    """Records written before sessions stopped listing their complaints (2026-12-04) live on until they expire."""
    session = sample()
    older = dict(session.to_dict(), complaints=["G59AXKRN2"])
    assert PortalSession.from_json(session.token, json.dumps(older)) == session


def test_fallback_copy_is_bound_to_its_token(app):
    with app.test_request_context():
        session = sample()
        blob = sessions.fallback_blob(session)
        assert "70:8A" not in blob  # encrypted, not just encoded
        assert sessions._from_fallback(session.token, blob) == session
        assert sessions._from_fallback("another-token-entirely", blob) is None
        assert sessions._from_fallback(session.token, blob[:-4] + "AAAA") is None


def test_the_page_copy_is_the_stored_record_and_expires_with_it(app):
    with app.test_request_context():
        session = sample()
        session.created, session.granted = time.time(), 0.0
        sessions.save(session)  # seals once; the page's copy reuses that very record
        stored = get_redis().get(sessions._token_keys(session.token)[0])
        assert base64.urlsafe_b64decode(sessions.fallback_blob(session) + "==") == stored
        session.lang = "en"  # changed since the save: the copy follows the change
        assert sessions._from_fallback(session.token, sessions.fallback_blob(session)).lang == "en"
        session.created -= app.config["SESSION_TTL"] + 1
        assert sessions._from_fallback(session.token, sessions.fallback_blob(session)) is None
