"""The RADIUS API and credential issuing through the Flask test client (no FreeRADIUS needed)."""
from __future__ import annotations

import json
import logging

from portal import radius

from ..conftest import MIKROTIK_ARRIVAL
from .conftest import API_TOKEN, form_fields

MAC = MIKROTIK_ARRIVAL["mac"]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def rlm_rest_body(**attributes) -> dict:
    """A request body as rlm_rest's body = 'json' encodes it."""
    return {name.replace("_", "-"): {"type": "string", "value": [value]} for name, value in attributes.items()}


def issue(resident) -> dict[str, str]:
    resident.arrive()
    page = resident.connect()
    assert page.status_code == 200
    return form_fields(page.get_data(as_text=True))


def test_connect_in_radius_mode_stores_a_short_lived_credential_bound_to_the_device(radius_app, resident, redis):
    fields = issue(resident)
    assert fields["username"].startswith("p") and len(fields["password"]) == 24
    key = radius.CREDENTIAL.format(fields["username"])
    assert 0 < redis.ttl(key) <= 120
    stored = json.loads(redis.get(key))
    assert stored["site_id"] == "BALI-0001" and len(stored["device"]) == 16
    # Only the portal session holds the raw MAC; the credential binds to the device id.
    assert "mac" not in stored and MAC.encode() not in redis.get(key).upper().replace(b"-", b":")
    assert stored["password"] == fields["password"] and stored["minutes"] == 30
    again = issue(resident)
    assert again["username"] != fields["username"] and again["password"] != fields["password"]


def test_credential_never_outlives_the_portal_session(app_config, redis, request):
    app_config.update(SESSION_TTL=60, RADIUS_CREDENTIAL_TTL=600)
    request.getfixturevalue("radius_app")
    fields = issue(request.getfixturevalue("resident"))
    assert 0 < redis.ttl(radius.CREDENTIAL.format(fields["username"])) <= 60


def test_radius_mode_without_a_mac_shows_the_grant_failed_page(radius_app, resident, redis):
    resident.arrive(mac="")
    page = resident.connect()
    assert page.status_code == 502
    assert not redis.keys("portal:radius:*")


def test_api_refuses_calls_without_the_right_token(radius_app, client, resident, redis):
    fields = issue(resident)
    body = rlm_rest_body(User_Name=fields["username"], Calling_Station_Id=MAC)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}):
        for path in ("/radius/authorize", "/radius/post-auth", "/radius/accounting"):
            assert client.post(path, json=body, headers=headers).status_code == 403
    assert redis.exists(radius.CREDENTIAL.format(fields["username"]))
    assert client.post("/radius/authorize", json=body, headers=AUTH).status_code == 200


def test_api_refuses_everything_when_no_token_is_configured(app_config, request):
    app_config["RADIUS_API_TOKEN"] = ""
    request.getfixturevalue("radius_app")
    response = request.getfixturevalue("client").post("/radius/authorize", json=rlm_rest_body(User_Name="x"), headers={"Authorization": "Bearer "})
    assert response.status_code == 403


def test_two_racing_logins_with_one_credential_let_only_one_through(radius_app, client, resident):
    fields = issue(resident)
    body = rlm_rest_body(User_Name=fields["username"], Calling_Station_Id=MAC)
    first = client.post("/radius/authorize", json=body, headers=AUTH)
    second = client.post("/radius/authorize", json=body, headers=AUTH)
    assert first.status_code == second.status_code == 200
    assert first.get_json()["control:Cleartext-Password"] == fields["password"]
    assert client.post("/radius/post-auth", json=body, headers=AUTH).status_code == 204
    assert client.post("/radius/post-auth", json=body, headers=AUTH).status_code == 401
    assert client.post("/radius/authorize", json=body, headers=AUTH).status_code == 404


def test_nothing_personal_in_logs_or_left_in_redis(radius_app, client, resident, redis, caplog):
    caplog.set_level(logging.DEBUG)
    fields = issue(resident)
    user = fields["username"]
    client.post("/radius/authorize", json=rlm_rest_body(User_Name=user, Calling_Station_Id="70:8A:09:65:4D:ED"),
                headers=AUTH)
    client.post("/radius/authorize", json=rlm_rest_body(User_Name="resident@example.com"), headers=AUTH)
    body = rlm_rest_body(User_Name=user, Calling_Station_Id=MAC, Framed_IP_Address=MIKROTIK_ARRIVAL["ip"])
    assert client.post("/radius/authorize", json=body, headers=AUTH).status_code == 200
    assert client.post("/radius/post-auth", json=body, headers=AUTH).status_code == 204
    stop = {**body, **rlm_rest_body(Acct_Status_Type="Stop", Acct_Session_Time="60")}
    assert client.post("/radius/accounting", json=stop, headers=AUTH).status_code == 204
    for secret in (MAC, MAC.replace(":", "-"), MIKROTIK_ARRIVAL["ip"], fields["password"], user,
                   "resident@example.com", API_TOKEN):
        assert secret not in caplog.text
    for key in redis.keys("portal:radius:*"):
        dump = json.dumps({k.decode(): v.decode() for k, v in redis.hgetall(key).items()})
        assert "70:8A:09" not in dump and MIKROTIK_ARRIVAL["ip"] not in dump


def test_reply_attributes_per_vendor():
    base = dict(username="u", password="p", site_id="S", device="d", minutes=0)
    assert radius.reply_attributes(radius.Credential(vendor="mikrotik", **base)) == {}
    mikrotik = radius.Credential(vendor="mikrotik", download_kbps=2048, quota_mb=4096, **{**base, "minutes": 60})
    assert radius.reply_attributes(mikrotik, interim_interval=300) == {
        "reply:Session-Timeout": 3600,
        "reply:Acct-Interim-Interval": 300,
        "reply:Mikrotik-Rate-Limit": "0/2048k",  # upload unlimited
        "reply:Mikrotik-Total-Limit": 0,
        "reply:Mikrotik-Total-Limit-Gigawords": 1,
    }
    pfsense = radius.Credential(vendor="pfsense", upload_kbps=256, quota_mb=10, **base)
    assert radius.reply_attributes(pfsense) == {"reply:WISPr-Bandwidth-Max-Up": 256000}
