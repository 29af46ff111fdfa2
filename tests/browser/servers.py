"""Loopback servers for browser tests: the portal app and a stand-in MikroTik router."""
from __future__ import annotations

import threading
from urllib.parse import parse_qs, quote

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response



class ServerThread:
    """A WSGI app served by werkzeug on 127.0.0.1, in a background thread."""

    def __init__(self, wsgi_app):
        self.server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class Router:
    """Stands in for the hotspot: serves the operator kit's login.html filled in, records trial logins."""

    def __init__(self, mac: str, identity: str = "hs-5101011006-1"):
        self.mac, self.identity = mac, identity
        self.portal_url = ""
        self.logins: list[dict[str, list[str]]] = []
        self.base = ""

    def variables(self) -> dict[str, str]:
        """What RouterOS substitutes for $(name) in login.html."""
        login = f"{self.base}/login"
        return {
            "identity": self.identity, "mac": self.mac, "ip": "10.5.50.253", "username": "",
            "link-login": f"{login}?dst=http%3A%2F%2Fexample.com%2F", "link-login-only": login,
            "link-orig": "http://example.com/", "link-orig-esc": quote("http://example.com/", safe=""),
            "mac-esc": quote(self.mac, safe=""), "chap-id": "", "chap-challenge": "", "trial": "yes",
            "error": "",
        }

    def login_page(self) -> str:
        """The kit's login.html for this router's site, with the router's variables filled in."""
        from portal.operator_kit import build_kit
        from portal.sites import parse_csv
        from tests.conftest import SITES_CSV

        site = next(s for s in parse_csv(SITES_CSV) if s.gateway_id == self.identity)
        html = build_kit(site, public_url=self.portal_url, lapor_url="https://www.lapor.go.id").files["login.html"]
        for name, value in self.variables().items():
            html = html.replace(f"$({name})", value)
        return html

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/login.html":
            response = Response(self.login_page(), content_type="text/html; charset=utf-8")
        elif request.path == "/login":
            self.logins.append(parse_qs(request.query_string.decode()))
            response = Response("<!doctype html><title>online</title><p id=online>You are logged in</p>",
                                content_type="text/html; charset=utf-8")
        else:
            response = Response("not found", status=404)
        return response(environ, start_response)
