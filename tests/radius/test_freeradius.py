"""End to end: the portal issues a credential, a real FreeRADIUS 3.2 asks the portal about it."""
from __future__ import annotations

import json

from hotspot_hooks import Arrival
from hotspot_hooks.mikrotik import octal_to_bytes
from portal import radius
from portal.crypto import get_crypto
from portal.sessions import PortalSession
from portal.sites import RECORDS, Site, save_site

from ..conftest import MIKROTIK_ARRIVAL
from .conftest import COOVA_NAS, COOVA_SITE, form_fields
from .freeradius import chap_attributes

MAC = MIKROTIK_ARRIVAL["mac"]
NAS = MIKROTIK_ARRIVAL["identity"]
# As the router's login.html posts them: the challenge is the MikroTik manual's example
# (gateways.md §1.2 a); the id is below 32 so radclient sends our CHAP-Password as is.
CHAP_ID = "\\025"
CHAP_CHALLENGE = "\\357\\015\\330\\013\\021\\234\\145\\245\\303\\253\\142\\246\\133\\175\\375\\316"
QUOTA_500_MB = 500 * 1024 * 1024


def q(value: str) -> str:
    """A radclient string value."""
    return '"' + value + '"'


def passed_portal(resident, **arrival) -> dict[str, str]:
    """Walk the MikroTik journey on a RADIUS-mode site; return the login form's fields."""
    resident.arrive(**arrival)
    page = resident.connect()
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    fields = form_fields(page.get_data(as_text=True))
    assert fields.get("username") and fields.get("password"), fields
    return fields


def pap(username: str, password: str, mac: str = MAC, **extra) -> dict[str, str]:
    return {"User-Name": q(username), "User-Password": q(password), "Calling-Station-Id": q(mac),
            "NAS-Identifier": q(NAS), **extra}


def test_pap_login_is_accepted_with_session_timeout_and_rate_limit(radius_stack, resident, redis):
    fields = passed_portal(resident)
    code, reply, log = radius_stack.send("auth", pap(fields["username"], fields["password"]))
    assert code == "Access-Accept", log
    assert reply["Session-Timeout"] == ["1800"], log
    # rx/tx from the router's side: 512 kbit/s upload, 2048 kbit/s download.
    assert reply["Mikrotik-Rate-Limit"] == ["512k/2048k"], log
    assert reply["Mikrotik-Total-Limit"] == [str(QUOTA_500_MB)], log
    assert "Cleartext-Password" not in reply
    assert not redis.exists(radius.CREDENTIAL.format(fields["username"]))


def test_mikrotik_http_chap_login_is_accepted(radius_stack, resident):
    fields = passed_portal(resident, **{"chap-id": CHAP_ID, "chap-challenge": CHAP_CHALLENGE})
    # What the router sends after the form posted md5(chap-id ‖ password ‖ challenge) in hex.
    ident = octal_to_bytes(CHAP_ID)
    request = {"User-Name": q(fields["username"]), "Calling-Station-Id": q(MAC), "NAS-Identifier": q(NAS),
               "CHAP-Password": "0x" + (ident + bytes.fromhex(fields["password"])).hex(),
               "CHAP-Challenge": "0x" + octal_to_bytes(CHAP_CHALLENGE).hex()}
    code, reply, log = radius_stack.send("auth", request)
    assert code == "Access-Accept", log
    assert reply["Mikrotik-Rate-Limit"] == ["512k/2048k"], log


def test_chap_computed_by_the_nas_is_accepted(radius_stack, resident):
    fields = passed_portal(resident)
    request = {"User-Name": q(fields["username"]), "Calling-Station-Id": q(MAC),
               **chap_attributes(fields["password"])}
    code, reply, log = radius_stack.send("auth", request)
    assert code == "Access-Accept", log
    assert reply["Session-Timeout"] == ["1800"], log


def test_coovachilli_login_gets_wispr_bandwidth_and_octet_quota(radius_stack, radius_app):
    with radius_app.test_request_context():
        session = PortalSession(
            token="coova-test", site_id=COOVA_SITE, device=get_crypto().device_id(MAC),
            arrival=Arrival(vendor="coovachilli", gateway_id=COOVA_NAS, client_mac=MAC),
        )
        from portal.splash import site_of, site_settings

        credential = radius.issue(session, site_settings(site_of(session)))
    request = {"User-Name": q(credential.username), "NAS-Identifier": q(COOVA_NAS),
               # CoovaChilli writes MACs with dashes.
               "Calling-Station-Id": q(MAC.replace(":", "-")), **chap_attributes(credential.password, ident=0)}
    code, reply, log = radius_stack.send("auth", request)
    assert code == "Access-Accept", log
    assert reply["WISPr-Bandwidth-Max-Up"] == ["512000"], log
    assert reply["WISPr-Bandwidth-Max-Down"] == ["2048000"], log
    quota = 5000 * 1024 * 1024  # over 4 GiB: low 32 bits plus one gigaword
    assert reply["CoovaChilli-Max-Total-Octets"] == [str(quota % (1 << 32))], log
    assert reply["CoovaChilli-Max-Total-Gigawords"] == ["1"], log
    assert reply["Session-Timeout"] == ["1800"], log
    assert "Mikrotik-Rate-Limit" not in reply


def test_made_up_user_is_rejected(radius_stack, resident):
    passed_portal(resident)  # a real credential exists, just not this one
    code, reply, log = radius_stack.send("auth", pap("p0123456789abcdef", "0" * 24))
    assert code == "Access-Reject", log
    assert not reply, log  # nothing from a would-be authorization leaks into a reject


def test_wrong_password_is_rejected_and_does_not_burn_the_credential(radius_stack, resident):
    fields = passed_portal(resident)
    code, reply, log = radius_stack.send("auth", pap(fields["username"], "not-the-password"))
    assert code == "Access-Reject", log
    assert not reply, log
    code, _, log = radius_stack.send("auth", {"User-Name": q(fields["username"]), "Calling-Station-Id": q(MAC),
                                              **chap_attributes("not-the-password")})
    assert code == "Access-Reject", log
    code, _, log = radius_stack.send("auth", pap(fields["username"], fields["password"]))
    assert code == "Access-Accept", log


def test_reused_credential_is_rejected(radius_stack, resident):
    fields = passed_portal(resident)
    code, _, log = radius_stack.send("auth", pap(fields["username"], fields["password"]))
    assert code == "Access-Accept", log
    code, reply, log = radius_stack.send("auth", pap(fields["username"], fields["password"]))
    assert code == "Access-Reject", log
    assert not reply, log


def test_other_device_is_rejected(radius_stack, resident):
    fields = passed_portal(resident)
    code, reply, log = radius_stack.send("auth", pap(fields["username"], fields["password"], mac="70:8A:09:65:4D:ED"))
    assert code == "Access-Reject", log
    assert not reply, log
    code, _, log = radius_stack.send("auth", {**pap(fields["username"], fields["password"]),
                                              "Calling-Station-Id": q("")})
    assert code == "Access-Reject", log
    code, _, log = radius_stack.send("auth", pap(fields["username"], fields["password"]))
    assert code == "Access-Accept", log


def test_gateway_of_another_site_is_rejected(radius_stack, resident, redis, radius_app):
    fields = passed_portal(resident)
    code, _, log = radius_stack.send("auth", pap(fields["username"], fields["password"],
                                                 **{"NAS-Identifier": q("hs-5101011008-1")}))
    assert code == "Access-Accept", log  # not one of our gateways: the MAC binding decides
    # Now make it the registered MikroTik gateway of another site (BALI-0003).
    other = Site.from_json(redis.hget(RECORDS, "BALI-0003"))
    save_site(redis, Site(**{**other.__dict__, "gateway_vendor": "mikrotik", "gateway_id": "hs-5101011008-1"}))
    radius_app.extensions["portal_sites"].invalidate()
    fields = passed_portal(resident)
    code, _, log = radius_stack.send("auth", pap(fields["username"], fields["password"],
                                                 **{"NAS-Identifier": q("hs-5101011008-1")}))
    assert code == "Access-Reject", log
    code, _, log = radius_stack.send("auth", pap(fields["username"], fields["password"]))
    assert code == "Access-Accept", log


def test_accounting_start_and_stop_are_recorded_against_the_device(radius_stack, resident, redis, radius_app):
    fields = passed_portal(resident)
    code, _, log = radius_stack.send("auth", pap(fields["username"], fields["password"]))
    assert code == "Access-Accept", log
    common = {"User-Name": q(fields["username"]), "Acct-Session-Id": q("81f00001"), "NAS-Identifier": q(NAS),
              "Calling-Station-Id": q(MAC), "Framed-IP-Address": MIKROTIK_ARRIVAL["ip"]}
    code, _, log = radius_stack.send("acct", {**common, "Acct-Status-Type": "Start"})
    assert code == "Accounting-Response", log
    key = radius.ACCOUNTING.format(fields["username"])
    assert redis.hget(key, "status") == b"start", log
    code, _, log = radius_stack.send("acct", {
        **common, "Acct-Status-Type": "Stop", "Acct-Session-Time": "600", "Acct-Input-Octets": "1000",
        "Acct-Output-Octets": "5000", "Acct-Output-Gigawords": "1", "Acct-Terminate-Cause": "User-Request",
    })
    assert code == "Accounting-Response", log
    with radius_app.app_context():
        device = get_crypto().device_id(MAC)
    record = {k.decode(): v.decode() for k, v in redis.hgetall(key).items()}
    assert record["status"] == "stop"
    assert record["device"] == device and record["site"] == "BALI-0001"
    assert record["session_time"] == "600"
    assert record["input_octets"] == "1000"
    assert record["output_octets"] == str((1 << 32) + 5000)
    assert record["terminate_cause"] == "User-Request"
    assert 0 < redis.ttl(key) <= radius_app.config["RADIUS_ACCOUNTING_TTL"]
    # A late interim must not overwrite the final numbers.
    code, _, log = radius_stack.send("acct", {**common, "Acct-Status-Type": "Interim-Update",
                                              "Acct-Session-Time": "300"})
    assert code == "Accounting-Response", log
    assert redis.hget(key, "session_time") == b"600"
    # Only the portal session (with its TTL) ever held the raw MAC or IP.
    dump = json.dumps(record)
    assert MAC not in dump and MAC.lower() not in dump and MIKROTIK_ARRIVAL["ip"] not in dump


def test_accounting_for_an_unknown_user_is_acknowledged_and_creates_nothing(radius_stack, redis):
    code, _, log = radius_stack.send("acct", {"User-Name": q("someone"), "Acct-Status-Type": "Stop",
                                              "Acct-Session-Id": q("1"), "Acct-Session-Time": "5"})
    assert code == "Accounting-Response", log
    assert not redis.exists(radius.ACCOUNTING.format("someone"))
