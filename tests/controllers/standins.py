"""Stand-in controllers: real HTTP servers on 127.0.0.1 speaking the documented endpoints.

Each stand-in is a small Flask app served by werkzeug in a thread. It records
what the portal asked (``calls``, ``granted``), lists the clients it was told are
connected (``connect_client``), and can be told to fail the way real controllers
do: wrong credentials, expired sessions, a missing CSRF token, 5xx answers and
slow answers.
"""
from __future__ import annotations

import base64
import json
import secrets
import threading
import time

from flask import Flask, jsonify, request
from werkzeug.serving import make_server


class StandIn:
    """A Flask app on an ephemeral 127.0.0.1 port, in a daemon thread."""

    def __init__(self):
        self.app = Flask(type(self).__name__)
        self.calls: list[tuple[str, str]] = []
        self.granted: list[dict] = []
        self.fail_status = 0      # answer every API call with this status (e.g. 500)
        self.delay = 0.0          # seconds to sleep before answering API calls
        self.logins = 0
        self.app.before_request(self._record)
        self._server = None

    def _record(self):
        self.calls.append((request.method, request.path))

    def start(self) -> "StandIn":
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def misbehave(self):
        """Return a failure response when told to fail, after any configured delay."""
        if self.delay:
            time.sleep(self.delay)
        if self.fail_status:
            return "<html>Internal error</html>", self.fail_status
        return None


def fake_jwt(claims: dict) -> str:
    """An unsigned JWT-shaped token carrying *claims*, as UniFi OS's TOKEN cookie does."""
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class UnifiStandIn(StandIn):
    """UniFi Network: classic controller, or UniFi OS (``/proxy/network``, CSRF from the JWT)."""

    def __init__(self, *, unifi_os: bool, username: str = "portal-admin", password: str = "unifi-pass-0123456789",
                 sites: tuple[str, ...] = ("default", "abc123xy")):
        super().__init__()
        self.unifi_os = unifi_os
        self.username, self.password, self.sites = username, password, sites
        self.sessions: dict[str, str] = {}   # cookie value -> csrf token
        self.csrf_in_jwt = True
        self.stations: list[dict] = []       # online clients, as stat/sta lists them
        # Versions differ on an unknown station: an empty list, or UnknownStation.
        self.unknown_station_error = unifi_os
        prefix = "/proxy/network" if unifi_os else ""
        app = self.app
        app.add_url_rule("/", "root", self.root)
        app.add_url_rule("/api/auth/login" if unifi_os else "/api/login", "login", self.login, methods=["POST"])
        app.add_url_rule(prefix + "/api/s/<site>/cmd/stamgr", "stamgr", self.stamgr, methods=["POST"])
        app.add_url_rule(prefix + "/api/s/<site>/stat/sta/<mac>", "station", self.station)

    def connect_client(self, mac: str, ap_mac: str = "44:d9:e7:0a:80:43", site: str = "default") -> None:
        """Make *mac* an online client of *ap_mac* on *site*."""
        self.stations.append({"site": site, "mac": mac.lower(), "ap_mac": ap_mac.lower(), "is_guest": True,
                              "authorized": False, "essid": "WiFi Publik Bali"})

    def _logged_in(self, *, csrf: bool):
        cookie = request.cookies.get("TOKEN" if self.unifi_os else "unifises", "")
        if cookie not in self.sessions:
            return jsonify({"meta": {"rc": "error", "msg": "api.err.LoginRequired"}, "data": []}), 401
        if csrf and self.unifi_os and request.headers.get("X-CSRF-Token") != self.sessions[cookie]:
            return "", 403   # UniFi OS: silent 403 without the CSRF header
        return None

    def station(self, site: str, mac: str):
        failure = self.misbehave() or self._logged_in(csrf=False)
        if failure:
            return failure
        if site not in self.sites:
            return jsonify({"meta": {"rc": "error", "msg": "api.err.NoSiteContext"}, "data": []}), 400
        found = [{k: v for k, v in st.items() if k != "site"} for st in self.stations
                 if st["site"] == site and st["mac"] == mac.lower()]
        if not found and self.unknown_station_error:
            return jsonify({"meta": {"rc": "error", "msg": "api.err.UnknownStation"}, "data": []}), 400
        return jsonify({"meta": {"rc": "ok"}, "data": found})

    def root(self):
        if self.unifi_os:
            return "<html>UniFi OS</html>"
        return "", 302, {"Location": "/manage"}

    def login(self):
        body = request.get_json(silent=True) or {}
        self.logins += 1
        if body.get("username") != self.username or body.get("password") != self.password:
            if self.unifi_os:
                return jsonify({"code": "AUTHENTICATION_FAILED_INVALID_CREDENTIALS"}), 401
            return jsonify({"meta": {"rc": "error", "msg": "api.err.Invalid"}, "data": []}), 400
        cookie, csrf = secrets.token_hex(16), secrets.token_hex(16)
        response = jsonify({"meta": {"rc": "ok"}, "data": []})
        if self.unifi_os:
            claims = {"userId": "u1", "csrfToken": csrf} if self.csrf_in_jwt else {"userId": "u1"}
            token = fake_jwt(claims)
            self.sessions[token] = csrf
            response.set_cookie("TOKEN", token, httponly=True)
        else:
            self.sessions[cookie] = ""
            response.set_cookie("unifises", cookie, httponly=True)
        return response

    def stamgr(self, site: str):
        failure = self.misbehave() or self._logged_in(csrf=True)
        if failure:
            return failure
        if site not in self.sites:
            return jsonify({"meta": {"rc": "error", "msg": "api.err.NoSiteContext"}, "data": []}), 400
        body = request.get_json()
        self.granted.append({"site": site, **body})
        return jsonify({"meta": {"rc": "ok"}, "data": [{"mac": body.get("mac"), "authorized_by": "api"}]})

    def expire_sessions(self) -> None:
        """Forget every login, as a controller restart or session timeout does."""
        self.sessions.clear()


class OmadaStandIn(StandIn):
    """Omada controller 5.x hotspot API under ``/<controller_id>/api/v2/hotspot``."""

    def __init__(self, *, controller_id: str = "7f3c2a1b9e8d4c6a5b4a3f2e1d0c9b8a", name: str = "portal-operator",
                 password: str = "omada-pass-0123456789", cookie_name: str = "TPOMADA_SESSIONID",
                 site_id: str = "64a1b2c3d4e5f60718293a4b", client_id: str = "0c1d2e3f4a5b",
                 client_secret: str = "omada-openapi-secret-0123456789"):
        super().__init__()
        self.controller_id, self.name, self.password, self.cookie_name = controller_id, name, password, cookie_name
        self.site_id, self.client_id, self.client_secret = site_id, client_id, client_secret
        self.sessions: dict[str, str] = {}   # session cookie -> csrf token
        self.access_tokens: set[str] = set()
        self.token_grants = 0
        self.clients: list[dict] = []        # connected clients of site_id, as the Open API lists them
        base = f"/{controller_id}/api/v2/hotspot"
        self.app.add_url_rule(base + "/login", "login", self.login, methods=["POST"])
        self.app.add_url_rule(base + "/extPortal/auth", "auth", self.auth, methods=["POST"])
        self.app.add_url_rule("/openapi/authorize/token", "token", self.token, methods=["POST"])
        self.app.add_url_rule(f"/openapi/v1/{controller_id}/sites/<site>/clients", "clients", self.list_clients)

    def connect_client(self, mac: str, ap_mac: str = "B0-95-75-15-93-44", ip: str = "192.168.100.165") -> None:
        """Make *mac* (dash form) a connected client of the site, on *ap_mac*."""
        self.clients.append({"mac": mac.upper(), "ip": ip, "apMac": ap_mac.upper(), "ssid": "eap225",
                             "wireless": True, "active": True, "authStatus": 0})

    def token(self):
        body = request.get_json(silent=True) or {}
        if request.args.get("grant_type") != "client_credentials":
            return jsonify({"errorCode": -44111, "msg": "The grant type is invalid."})
        if (body.get("omadacId") != self.controller_id or body.get("client_id") != self.client_id
                or body.get("client_secret") != self.client_secret):
            return jsonify({"errorCode": -44106, "msg": "The client id or client secret is invalid."})
        self.token_grants += 1
        token = "AT-" + secrets.token_hex(12)
        self.access_tokens.add(token)
        return jsonify({"errorCode": 0, "msg": "Open API Get Access Token successfully.",
                        "result": {"accessToken": token, "tokenType": "bearer", "expiresIn": 7200,
                                   "refreshToken": "RT-" + secrets.token_hex(12)}})

    def list_clients(self, site: str):
        failure = self.misbehave()
        if failure:
            return failure
        if request.headers.get("Authorization", "").removeprefix("AccessToken=") not in self.access_tokens:
            return jsonify({"errorCode": -44112, "msg": "The access token has expired."})
        if site != self.site_id:
            return jsonify({"errorCode": -1001, "msg": "Invalid request parameters."})
        page, size = int(request.args.get("page", 1)), int(request.args.get("pageSize", 10))
        rows = self.clients[(page - 1) * size:page * size]
        return jsonify({"errorCode": 0, "msg": "Success.",
                        "result": {"totalRows": len(self.clients), "currentPage": page, "currentSize": size,
                                   "data": rows}})

    def login(self):
        body = request.get_json(silent=True) or {}
        self.logins += 1
        if body.get("name") != self.name or body.get("password") != self.password:
            return jsonify({"errorCode": -30109, "msg": "Invalid username or password."})
        session, token = secrets.token_hex(16), secrets.token_hex(16)
        self.sessions[session] = token
        response = jsonify({"errorCode": 0, "msg": "Hotspot log in successfully.", "result": {"token": token}})
        response.set_cookie(self.cookie_name, session, httponly=True)
        return response

    def auth(self):
        failure = self.misbehave()
        if failure:
            return failure
        session = request.cookies.get(self.cookie_name, "")
        if session not in self.sessions or request.headers.get("Csrf-Token") != self.sessions[session]:
            return jsonify({"errorCode": -1, "msg": "Login required."}), 401
        body = request.get_json()
        self.granted.append(body)
        return jsonify({"errorCode": 0, "msg": "Success."})

    def expire_sessions(self) -> None:
        """Forget every login and access token."""
        self.sessions.clear()
        self.access_tokens.clear()


class RouterOSRestStandIn(StandIn):
    """RouterOS v7 ``/rest`` for hotspot users and ``/ip/hotspot/active/login``."""

    def __init__(self, *, username: str = "portal-rest", password: str = "rest-pass-0123456789"):
        super().__init__()
        self.username, self.password = username, password
        self.users: dict[str, dict] = {}
        self.active: list[dict] = []
        self.hosts: list[dict] = []
        self.refuse_logins = False   # /active/login answers 400 (as for a host that just left)
        self._next = 1
        app = self.app
        app.add_url_rule("/rest/ip/hotspot/user", "users", self.users_view, methods=["GET", "PUT"])
        app.add_url_rule("/rest/ip/hotspot/user/<item>", "user", self.user_view, methods=["DELETE"])
        app.add_url_rule("/rest/ip/hotspot/active/login", "login", self.active_login, methods=["POST"])
        app.add_url_rule("/rest/ip/hotspot/active", "active", self.active_view)
        app.add_url_rule("/rest/ip/hotspot/host", "hosts", self.hosts_view)

    def connect_client(self, mac: str, ip: str = "10.5.50.253", to_address: str = "") -> None:
        """Make *mac* at *ip* a (not yet logged-in) hotspot host."""
        self.hosts.append({".id": f"*{len(self.hosts) + 1:X}", "mac-address": mac.upper(), "address": ip,
                           "to-address": to_address or ip, "server": "hotspot1", "authorized": "false",
                           "bypassed": "false"})

    def end_sessions(self) -> None:
        """Every active session ends (logout, timeout), as on the router."""
        self.active.clear()
        for host in self.hosts:
            host["authorized"] = "false"

    @staticmethod
    def _matching(items):
        # RouterOS REST filters a GET by any property given in the query string.
        return [i for i in items if all(str(i.get(k)) == v for k, v in request.args.items())]

    def hosts_view(self):
        denied = self._auth()
        return denied or jsonify(self._matching(self.hosts))

    def active_view(self):
        denied = self._auth()
        return denied or jsonify(self._matching(self.active))

    def _auth(self):
        failure = self.misbehave()
        if failure:
            return failure
        auth = request.authorization
        if not auth or auth.username != self.username or auth.password != self.password:
            return jsonify({"error": 401, "message": "Unauthorized"}), 401
        return None

    def users_view(self):
        denied = self._auth()
        if denied:
            return denied
        if request.method == "GET":
            return jsonify(self._matching(self.users.values()))
        body = request.get_json()
        item = {".id": f"*{self._next:X}", **body}
        self._next += 1
        self.users[item[".id"]] = item
        return jsonify(item), 201

    def user_view(self, item: str):
        denied = self._auth()
        if denied:
            return denied
        if self.users.pop(item, None) is None:
            return jsonify({"error": 404, "message": "Not Found"}), 404
        return "", 204

    def active_login(self):
        denied = self._auth()
        if denied:
            return denied
        body = request.get_json()
        if self.refuse_logins:
            return jsonify({"error": 400, "message": "Bad Request", "detail": "host is not there"}), 400
        user = next((u for u in self.users.values() if u["name"] == body.get("user")), None)
        if user is None or user["password"] != body.get("password"):
            return jsonify({"error": 400, "message": "Bad Request", "detail": "invalid username or password"}), 400
        host = next((h for h in self.hosts if h["mac-address"] == str(body.get("mac-address", "")).upper()
                     and body.get("ip") in (h["address"], h["to-address"])), None)
        if host is None:
            return jsonify({"error": 400, "message": "Bad Request", "detail": "no such host"}), 400
        host["authorized"] = "true"
        self.active.append({**body, "limit-uptime": user.get("limit-uptime")})
        self.granted.append(body)
        return jsonify([])
