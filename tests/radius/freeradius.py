"""A real FreeRADIUS 3.2 (Debian's) on loopback, configured from deploy/freeradius.

The raddb is a copy of Debian's /etc/freeradius/3.0 with every module and site
switched off, then only what the portal's deployment needs switched on (rest,
pap, chap and the ``portal`` site), so it starts in well under a second.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "freeradius"
DEBIAN_RADDB = Path("/etc/freeradius/3.0")
SECRET = "testing-radius-secret"
MODULES = ("rest", "pap", "chap", "always")


def find_binary(name: str) -> str:
    """Return the path of a FreeRADIUS tool, or fail with what to install."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise AssertionError(f"{name} is not installed: apt-get install freeradius freeradius-utils freeradius-rest")


def free_udp_ports(count: int) -> list[int]:
    """Return *count* consecutive free UDP ports on 127.0.0.1 (auth, then acct)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            held = []
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
        return list(range(first, first + count))
    raise AssertionError("no free UDP ports on 127.0.0.1")


def _replace_once(text: str, old: str, new: str, where: str) -> str:
    count = text.count(old)
    assert count >= 1, f"{where}: expected {old!r} in the deployed configuration"
    return text.replace(old, new)


def build_raddb(target: Path, *, auth_port: int, acct_port: int) -> Path:
    """Copy Debian's raddb to *target* and enable only the portal's modules and site."""
    if not (DEBIAN_RADDB / "radiusd.conf").is_file():
        raise AssertionError(f"{DEBIAN_RADDB}/radiusd.conf missing: apt-get install freeradius")
    if not Path("/usr/lib/freeradius/rlm_rest.so").is_file():
        raise AssertionError("rlm_rest.so missing: apt-get install freeradius-rest")
    raddb = target / "raddb"
    shutil.copytree(DEBIAN_RADDB, raddb, symlinks=True)
    for folder in ("mods-enabled", "sites-enabled"):
        for entry in (raddb / folder).iterdir():
            entry.unlink()
    mods = raddb / "mods-available"
    shutil.copy(DEPLOY / "mods-available" / "rest", mods / "rest")
    for module in MODULES:
        (raddb / "mods-enabled" / module).symlink_to(mods / module)
    site = (DEPLOY / "sites-available" / "portal").read_text()
    # Operators listen on every address at 1812/1813; the tests use loopback high ports only.
    site = _replace_once(site, "ipaddr = *", "ipaddr = 127.0.0.1", "sites-available/portal")
    site = _replace_once(site, "port = 1812", f"port = {auth_port}", "sites-available/portal")
    site = _replace_once(site, "port = 1813", f"port = {acct_port}", "sites-available/portal")
    (raddb / "sites-available" / "portal").write_text(site)
    (raddb / "sites-enabled" / "portal").symlink_to(raddb / "sites-available" / "portal")
    shutil.copy(DEPLOY / "dictionary.portal", raddb / "dictionary.portal")
    with open(raddb / "dictionary", "a") as dictionary:
        dictionary.write("\n$INCLUDE dictionary.portal\n")
    (raddb / "clients.conf").write_text(
        "client loopback {\n\tipaddr = 127.0.0.1\n\tsecret = %s\n\tshortname = loopback\n}\n" % SECRET
    )
    conf = (raddb / "radiusd.conf").read_text()
    # Root in CI: stay root, keep state in the temporary directory, no proxying.
    conf = _replace_once(conf, "\tuser = freerad\n", "", "radiusd.conf")
    conf = _replace_once(conf, "\tgroup = freerad\n", "", "radiusd.conf")
    # Rejects are delayed 1 s against password guessing; the tests send many on purpose.
    conf = _replace_once(conf, "reject_delay = 1\n", "reject_delay = 0\n", "radiusd.conf")
    conf = _replace_once(conf, "proxy_requests  = yes", "proxy_requests  = no", "radiusd.conf")
    conf = _replace_once(conf, "$INCLUDE proxy.conf", "", "radiusd.conf")
    conf = _replace_once(conf, "logdir = /var/log/freeradius", f"logdir = {target}/log", "radiusd.conf")
    conf = _replace_once(conf, "run_dir = ${localstatedir}/run/${name}", f"run_dir = {target}/run", "radiusd.conf")
    (raddb / "radiusd.conf").write_text(conf)
    for folder in ("log", "run"):
        (target / folder).mkdir(exist_ok=True)
    return raddb


class FreeRadius:
    """``freeradius -f -X`` on 127.0.0.1 with the portal's configuration."""

    def __init__(self, workdir: Path, *, api_url: str, api_token: str):
        self.binary = find_binary("freeradius")
        self.radclient = find_binary("radclient")
        self.workdir = workdir
        self.auth_port, self.acct_port = free_udp_ports(2)
        self.raddb = build_raddb(workdir, auth_port=self.auth_port, acct_port=self.acct_port)
        self.log_path = workdir / "radiusd.log"
        self.env = dict(os.environ, PORTAL_RADIUS_API_URL=api_url, PORTAL_RADIUS_API_TOKEN=api_token)
        self.process: subprocess.Popen | None = None

    def log(self) -> str:
        """The server's debug output so far (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self, timeout: float = 20.0) -> "FreeRadius":
        self.process = subprocess.Popen(
            [self.binary, "-f", "-X", "-d", str(self.raddb)],
            stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT, env=self.env,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"freeradius exited with {self.process.returncode}:\n{self.log()[-6000:]}")
            if "Ready to process requests" in self.log():
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"freeradius not ready after {timeout}s:\n{self.log()[-6000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def send(self, kind: str, attributes: dict[str, str]) -> tuple[str, dict[str, list[str]], str]:
        """Send one packet with radclient; return (reply code, reply attributes, raw output)."""
        port = self.auth_port if kind == "auth" else self.acct_port
        lines = ",\n".join(f"{name} = {value}" for name, value in attributes.items())
        mark = len(self.log())
        result = subprocess.run(
            [self.radclient, "-x", "-r", "1", "-t", "5", "-d", str(self.raddb),
             f"127.0.0.1:{port}", kind, SECRET],
            input=lines + "\n", capture_output=True, text=True, timeout=30,
        )
        output = result.stdout + result.stderr
        code, reply = parse_reply(output)
        return code, reply, output + "\n--- freeradius ---\n" + self.log()[mark:][-8000:]


def parse_reply(output: str) -> tuple[str, dict[str, list[str]]]:
    """Read radclient -x output: the reply's code and its attributes."""
    code, reply, in_reply = "", {}, False
    for line in output.splitlines():
        if line.startswith("Received "):
            code = line.split()[1]
            in_reply = True
            continue
        if line.startswith("Sent "):
            in_reply = False
            continue
        if in_reply and "=" in line and line.startswith(("\t", " ")):
            name, _, value = line.strip().partition(" = ")
            reply.setdefault(name, []).append(value.strip().strip('"'))
    return code, reply


def chap_attributes(password: str, *, ident: int = 0x05) -> dict[str, str]:
    """CHAP-Password and CHAP-Challenge as a NAS computes them (RFC 1994 / RFC 2865 §2.2).

    radclient re-hashes a 17-octet CHAP-Password whose octets are all >= 32, taking it for a
    cleartext password; an ident below 32 marks ours as already encoded.
    """
    assert ident < 32, "radclient would re-encode this CHAP-Password"
    challenge = os.urandom(16)
    response = hashlib.md5(bytes([ident]) + password.encode() + challenge).digest()
    return {
        "CHAP-Challenge": "0x" + challenge.hex(),
        "CHAP-Password": "0x" + (bytes([ident]) + response).hex(),
    }
