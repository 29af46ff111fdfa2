"""`python -m tests.bench.precompress`: gzip of the filled page against renders kept pre-compressed.

Issue 14 asked for cached renders kept pre-compressed. A render is shared and each request fills
its marks (token, session copy, stamp, place fields), so "pre-compressed" can only mean: each
piece of the render between two marks deflated once, on its own and sync-flushed (a byte-aligned
end, no final block), and each request's values deflated as it is served and joined with them
into one gzip member (a raw deflate stream may be made of such pieces one after the other; the
CRC is taken over the filled text). Three ways for the values are measured:

- ``stored``: each value as a stored (uncompressed) block, the least CPU there can be;
- ``alone``: each value deflated on its own (no dictionary);
- ``window``: each value deflated with the text served before it as its dictionary (the trick
  pigz uses to compress blocks apart), so a token or session copy repeated on five links is sent
  once and referred back to, as gzip of the whole page does.

The pages are the real landing and complaint form of the demo registry, served in process; each
way's output is checked to decompress to the page byte for byte. Prints bytes and microseconds per
page for each way next to ``gzip.compress`` of the whole filled page at the served level. A
benchmark, not a test: it never fails CI.
"""
from __future__ import annotations

import gzip
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

import redis

from portal import compress, create_app, page_cache
from portal.embedded_redis import EmbeddedRedis
from portal.sites import import_sites, parse_csv
from tests.conftest import DEMO_CSV, MIKROTIK_ARRIVAL, TOKEN, make_config

HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip, deflate, no name, mtime 0, unknown OS
LAST_BLOCK = b"\x03\x00"  # an empty final block of fixed codes: ends the stream after sync-flushed pieces
ROUNDS = 2000


def deflated(data: bytes, level: int, zdict: bytes = b"") -> bytes:
    """*data* as raw deflate blocks ending on a sync flush (back-references only into *zdict* and itself)."""
    if zdict:
        packer = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, zdict[-32768:])
    else:
        packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)


def stored(data: bytes) -> bytes:
    """*data* as stored deflate blocks (each value is far below a block's 65,535 bytes)."""
    out = []
    for at in range(0, len(data), 65535):
        chunk = data[at:at + 65535]
        out.append(b"\x00" + len(chunk).to_bytes(2, "little") + (len(chunk) ^ 0xFFFF).to_bytes(2, "little") + chunk)
    return b"".join(out)


def unfill(render: str, page: str) -> list[str] | None:
    """The values a request filled into *render*'s marks to give *page*, or None if it is not its render."""
    pieces = page_cache.MARK.split(render)
    if not page.startswith(pieces[0]):
        return None
    values, at = [], len(pieces[0])
    for n in range(2, len(pieces), 2):
        end = page.find(pieces[n], at) if pieces[n] else len(page)
        if end < 0:
            return None
        values.append(page[at:end])
        at = end + len(pieces[n])
    return values if at == len(page) else None


def joined(statics: list[bytes], packed: list[bytes], values: list[bytes], *, way: str) -> bytes:
    """One gzip member of the pre-deflated static pieces and this request's values deflated as served."""
    out, crc, served = [HEADER], 0, bytearray()
    for n, value in enumerate(values + [None]):
        out.append(packed[n])
        crc = zlib.crc32(statics[n], crc)
        served += statics[n]
        if value is None:
            break
        if way == "stored":
            out.append(stored(value))
        else:
            out.append(deflated(value, 1, bytes(served) if way == "window" else b""))
        crc = zlib.crc32(value, crc)
        served += value
    out += [LAST_BLOCK, crc.to_bytes(4, "little"), (len(served) & 0xFFFFFFFF).to_bytes(4, "little")]
    return b"".join(out)


def per_call(fn) -> tuple[bytes, float]:
    """What *fn* returns and its microseconds per call over ROUNDS calls."""
    fn()
    started = time.perf_counter()
    for _ in range(ROUNDS):
        result = fn()
    return result, (time.perf_counter() - started) / ROUNDS * 1e6


def measure(name: str, render: str, page: str) -> None:
    """Print bytes and µs of each way for one page."""
    values = [v.encode() for v in unfill(render, page)]
    statics = [p.encode() for p in page_cache.MARK.split(render)[0::2]]
    packed = [deflated(s, compress.LEVEL) if s else b"" for s in statics]
    body = page.encode()
    whole, whole_us = per_call(lambda: gzip.compress(body, compress.LEVEL, mtime=0))
    print(f"{name}: {len(body):,} B raw, {len(values)} marks filled")
    print(f"  gzip of the filled page (served now)   {len(whole):6,} B  {whole_us:6.1f} µs")
    for way in ("stored", "alone", "window"):
        out, micros = per_call(lambda way=way: joined(statics, packed, values, way=way))
        if gzip.decompress(out) != body:
            raise SystemExit(f"{name}: the {way} way does not decompress to the page")
        print(f"  pre-compressed pieces, values {way:6}  {len(out):6,} B  {micros:6.1f} µs")


def main() -> int:
    """Serve a landing and a form in process and compare the ways of compressing them."""
    work = Path(tempfile.mkdtemp(prefix="portal-precompress-"))
    store = EmbeddedRedis(work / "redis").start()
    try:
        app = create_app(make_config(store.url, work / "var", TESTING=False))
        import_sites(redis.Redis.from_url(store.url), parse_csv(DEMO_CSV.read_text()))
        client = app.test_client()
        arrival = dict(MIKROTIK_ARRIVAL, identity="hs-5101011006-1")
        landing = client.post("/hotspot/mikrotik", data=arrival).get_data(as_text=True)
        token = TOKEN.search(landing).group(1)
        form = client.get(f"/p/{token}/lapor").get_data(as_text=True)
        renders = [entry[1] for entry in app.extensions[page_cache.PAGES].values()]
        for name, page in (("landing", landing), ("complaint form", form)):
            render = next((r for r in renders if unfill(r, page) is not None), None)
            if render is None:
                print(f"{name}: no cached render matches the page", file=sys.stderr)
                return 1
            measure(name, render, page)
    finally:
        store.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
