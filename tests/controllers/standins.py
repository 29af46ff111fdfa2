"""Stand-in controllers: real HTTP servers on 127.0.0.1 speaking the documented endpoints.

Each stand-in is a small Flask app served by werkzeug in a thread. It records
what the portal asked (``calls``, ``granted``) and can be told to fail the way
real controllers do: wrong credentials, expired sessions, a missing CSRF
token, 5xx answers and slow answers.
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
        prefix = "/proxy/network" if unifi_os else ""
        app = self.app
        app.add_url_rule("/", "root", self.root)
        app.add_url_rule("/api/auth/login" if unifi_os else "/api/login", "login", self.login, methods=["POST"])
        app.add_url_rule(prefix + "/api/s/<site>/cmd/stamgr", "stamgr", self.stamgr, methods=["POST"])

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
        failure = self.misbehave()
        if failure:
            return failure
        cookie = request.cookies.get("TOKEN" if self.unifi_os else "unifises", "")
        if cookie not in self.sessions:
            return jsonify({"meta": {"rc": "error", "msg": "api.err.LoginRequired"}, "data": []}), 401
        if self.unifi_os and request.headers.get("X-CSRF-Token") != self.sessions[cookie]:
            return "", 403   # UniFi OS: silent 403 without the CSRF header
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
                 password: str = "omada-pass-0123456789", cookie_name: str = "TPOMADA_SESSIONID"):
        super().__init__()
        self.controller_id, self.name, self.password, self.cookie_name = controller_id, name, password, cookie_name
        self.sessions: dict[str, str] = {}   # session cookie -> csrf token
        base = f"/{controller_id}/api/v2/hotspot"
        self.app.add_url_rule(base + "/login", "login", self.login, methods=["POST"])
        self.app.add_url_rule(base + "/extPortal/auth", "auth", self.auth, methods=["POST"])

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
        """Forget every login."""
        self.sessions.clear()


class RouterOSRestStandIn(StandIn):
    """RouterOS v7 ``/rest`` for hotspot users and ``/ip/hotspot/active/login``."""

    def __init__(self, *, username: str = "portal-rest", password: str = "rest-pass-0123456789"):
        super().__init__()
        self.username, self.password = username, password
        self.users: dict[str, dict] = {}
        self.active: list[dict] = []
        self._next = 1
        app = self.app
        app.add_url_rule("/rest/ip/hotspot/user", "users", self.users_view, methods=["GET", "PUT"])
        app.add_url_rule("/rest/ip/hotspot/user/<item>", "user", self.user_view, methods=["DELETE"])
        app.add_url_rule("/rest/ip/hotspot/active/login", "login", self.active_login, methods=["POST"])

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
            name = request.args.get("name")
            return jsonify([u for u in self.users.values() if name is None or u["name"] == name])
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
        user = next((u for u in self.users.values() if u["name"] == body.get("user")), None)
        if user is None or user["password"] != body.get("password"):
            return jsonify({"error": 400, "message": "Bad Request", "detail": "invalid username or password"}), 400
        self.active.append({**body, "limit-uptime": user.get("limit-uptime")})
        self.granted.append(body)
        return jsonify([])
