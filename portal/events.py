"""Funnel events (impression -> form -> complaint -> delivered -> answered -> grant), recorded for results.

One event is written with one pipelined round trip (``add_to``), as:

- the raw stream ``portal:events`` (capped; trimmed by age by ``portal.retention``);
- a counter hash per region scope and WITA day, ``portal:{<scope>}:fn:<yyyymmdd>``, for the
  scopes the event's site lies in: the province (``p51``), its kabupaten (``r5101``),
  kecamatan (``r510101``), desa (``r5101011006``) and the site itself (``s<site_id>``).
  Fields (``|``-separated, see ``portal.funnel`` which reads them):

  - ``t|<step>|<campaign>|<variant>|<lang>|<site type>``  totals
  - ``h|<hh>|<step>|<campaign>|<variant>``               by WITA hour
  - ``r|<child>|<step>|<campaign>|<variant>``            by the next level down (kabupaten of
    the province, kecamatan of a kabupaten, desa of a kecamatan, site of a desa)

- a HyperLogLog of the pseudonymous device id per scope, day, step, campaign and variant,
  ``portal:{<scope>}:fu:<yyyymmdd>:<step>:<campaign>:<variant>``; one scope's keys share
  its hash tag so PFCOUNT can union days and variants even on Redis Cluster;
- for impressions and grants, ``portal:{s<site>}:last`` (``resident``/``grant`` = unix time),
  which the fleet page reads.

So a month for the whole province is 30 HGETALLs of one small hash each. Events carry the
pseudonymous device id (portal/tracking's device key), never a MAC or an IP. When Redis is
down, events go to the local spool and are replayed (the counters then land on the event's
own day, because the day comes from the event's time, not the replay's).

A request does not write its event itself: :func:`record` puts it in the process's buffer,
and a background thread writes what gathered every ``EVENT_FLUSH_SECONDS`` in one pipeline
(``add_to`` per event). No resident page waits for an event to reach Redis; a crash of the
process or the machine loses at most that interval's events (README, "Speed").
``EVENT_FLUSH_SECONDS = 0`` writes each event at once.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from flask import current_app, has_app_context

log = logging.getLogger(__name__)

EVENTS = "portal:events"
COUNTERS = "portal:{{{scope}}}:fn:{day}"
UNIQUES = "portal:{{{scope}}}:fu:{day}:{step}:{campaign}:{variant}"
LAST = "portal:{{s{site}}}:last"
#: Grant outcomes per vendor and WITA day (``<vendor>|ok|refused|failed``), for the fleet page:
#: one hash for the province and one per kabupaten (``KAB_GRANTS``), so an editor sees their own.
GRANTS = "portal:{{p{prov}}}:grants:{day}"
KAB_GRANTS = "portal:{{r{kab}}}:grants:{day}"
GRANTS_TTL = 100 * 86400
STREAM_MAXLEN = 500_000
#: Counters outlive raw events: they hold no personal data (see portal.retention).
COUNTER_TTL = 400 * 86400
#: The funnel's steps, in order.
STEPS = ("impression", "form", "complaint", "delivered", "answered", "grant")
#: Every kind an event may have: the steps, and complaints held for review.
KINDS = STEPS + ("complaint_held",)
WITA = 8 * 3600  # Bali is UTC+8 all year, no daylight saving
REGION_FIELDS = ("kab", "kec", "desa", "type")


def make_event(kind: str, *, site_id: str, campaign: str, lang: str, device: str, at: float | None = None,
               variant: str = "", site=None, province: str | None = None) -> dict:
    """Return one event as a flat dict of strings, with the site's region codes and type."""
    if site is None and site_id and has_app_context():
        site = current_app.extensions["portal_sites"].get(None, site_id)  # in memory, no round trip
    if province is None:
        province = current_app.config["PROVINCE"] if has_app_context() else "51"
    if campaign.startswith("c:") and not variant:
        # A published campaign as the landing names it, ``c:<id>:<version>:<variant>``: the
        # funnel counts the campaign by its id (across versions) and the A/B variant apart.
        parts = campaign.split(":")
        if len(parts) == 4:
            campaign, variant = parts[1], parts[3]
    return {
        "kind": kind,
        "site": site_id or "unknown",
        "campaign": _clean(campaign),
        "variant": _clean(variant),
        "lang": _clean(lang),
        "device": device or "",
        "at": f"{at or time.time():.3f}",
        "prov": province,
        "kab": _code(site.kabupaten_kode) if site else "",
        "kec": _code(site.kecamatan_kode) if site else "",
        "desa": _code(site.desa_kode) if site else "",
        "type": _clean(site.type) if site else "",
        "vendor": _clean(site.gateway_vendor) if site else "",
    }


def scopes(event: dict) -> list[tuple[str, str]]:
    """(scope tag, child of that scope) for every scope the event is counted in."""
    prov, kab, kec, desa, site = (event.get(k, "") for k in ("prov", "kab", "kec", "desa", "site"))
    chain = [f"p{prov or '51'}"] + [f"r{code}" for code in (kab, kec, desa) if code]
    children = [code for code in (kab, kec, desa) if code][: len(chain) - 1] + [site]
    pairs = list(zip(chain, children))
    pairs.append((f"s{site}", ""))
    return pairs


def wita(at: float) -> tuple[str, str]:
    """The WITA day (``yyyymmdd``) and hour (``hh``) of a unix time."""
    stamp = time.gmtime(float(at) + WITA)
    return time.strftime("%Y%m%d", stamp), f"{stamp.tm_hour:02d}"


# One scope's counters and uniques, server-side: a pipeline of one EVAL per scope costs far less
# client CPU than five commands per scope (measured: see README). Both keys share the scope's
# hash tag, so the script is Cluster-safe. EVAL (not EVALSHA) needs no SCRIPT LOAD round trip
# after a restart or failover; Redis caches the compiled script by its hash. A day's key gets its
# lifetime when it is made (its first total, a device new to its uniques), not on every event:
# an EXPIRE per key per event was a quarter of the script's work.
_SCOPE = """
if redis.call('HINCRBY', KEYS[1], ARGV[2], 1) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
if ARGV[4] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[4], 1) end
if ARGV[5] ~= '' and redis.call('PFADD', KEYS[2], ARGV[5]) == 1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return 1
"""


# The same writes for a whole event in one script, on a single Redis (not a Cluster, where the
# scopes' keys live in different slots): one command per event instead of six or seven. Measured
# on a batch of 2,000 events: the web process's CPU per event 53 -> 30 µs; a landing or a form is
# ~200–600 µs in all (issue 14).
_EVENT = """
local ttl, total, hourly, device, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[6])
for i = 1, n do
  local counters, uniques, child = KEYS[2 * i], KEYS[2 * i + 1], ARGV[6 + i]
  if redis.call('HINCRBY', counters, total, 1) == 1 then redis.call('EXPIRE', counters, ttl) end
  redis.call('HINCRBY', counters, hourly, 1)
  if child ~= '' then redis.call('HINCRBY', counters, child, 1) end
  if device ~= '' and redis.call('PFADD', uniques, device) == 1 then redis.call('EXPIRE', uniques, ttl) end
end
local last = ARGV[7 + n]
if last ~= '' then redis.call('HSET', KEYS[2 * n + 2], last, ARGV[8 + n]) end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', unpack(ARGV, 9 + n))
return 1
"""


def _writes(event: dict):
    """What *event* adds: its total, hourly and child fields, device, last-seen field, and keys per scope."""
    day, hour = wita(event["at"])
    kind, campaign, variant = event["kind"], event.get("campaign", ""), event.get("variant", "")
    total = f"t|{kind}|{campaign}|{variant}|{event.get('lang', '')}|{event.get('type', '')}"
    hourly = f"h|{hour}|{kind}|{campaign}|{variant}"
    device = event.get("device", "")
    last = ("resident" if kind == "impression" else "grant") if (
        kind in ("impression", "grant") and event["site"] != "unknown") else ""
    pairs = scopes(event)
    children = [f"r|{child}|{kind}|{campaign}|{variant}" if child else "" for _, child in pairs]
    keys = [(COUNTERS.format(scope=scope, day=day),
             UNIQUES.format(scope=scope, day=day, step=kind, campaign=campaign, variant=variant)) for scope, _ in pairs]
    return total, hourly, device, last, keys, children


def add_to(pipe, event: dict, *, single_node: bool = False) -> None:
    """Queue the commands that record *event* on a (non-transactional) pipeline.

    *single_node* (not a Cluster) sends them as one script.
    """
    total, hourly, device, last, keys, children = _writes(event)
    if single_node:
        flat_keys = [EVENTS] + [key for pair in keys for key in pair] + ([LAST.format(site=event["site"])] if last else [])
        fields = [part for item in event.items() for part in item]
        pipe.eval(_EVENT, len(flat_keys), *flat_keys, COUNTER_TTL, total, hourly, device, STREAM_MAXLEN, len(keys),
                  *children, last, event["at"] if last else "", *fields)
    else:
        pipe.xadd(EVENTS, event, maxlen=STREAM_MAXLEN, approximate=True)
        for (counters, uniques), child in zip(keys, children):
            pipe.eval(_SCOPE, 2, counters, uniques, COUNTER_TTL, total, hourly, child, device)
        if last:
            pipe.hset(LAST.format(site=event["site"]), last, event["at"])
    if event["kind"] == "grant":
        count_grant(pipe, event.get("prov") or "51", event.get("vendor", ""), "ok", at=float(event["at"]),
                    kab=event.get("kab", ""))


# A batch's counts for one day's counter hash, summed per field by the writer (ARGV: lifetime, then
# field, increment pairs); the key gets its lifetime when this batch makes it.
_COUNTERS = """
local new = redis.call('EXISTS', KEYS[1]) == 0
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
if new then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
"""
# A batch's devices for one uniques HyperLogLog (ARGV: lifetime, then devices).
_UNIQUES = """
if redis.call('PFADD', KEYS[1], unpack(ARGV, 2)) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
"""
UNIQUES_PER_CALL = 1000  # devices per PFADD: Lua's unpack has a limit of a few thousand values


def add_batch_to(pipe, events: list[dict]) -> None:
    """Queue the commands that record *events* (a buffered batch) on one pipeline.

    The counts are summed per key and field first: a batch of a busy second is a few hundred
    events on a few dozen keys, so one script per counter hash and one PFADD per uniques key
    replace the ~20 Redis operations each event's own writes cost (and as many AOF entries).
    Each event still has its own stream entry. Every key is written alone, so the same commands
    serve a Cluster.
    """
    counters: dict[str, dict[str, int]] = {}
    uniques: dict[str, set[str]] = {}
    seen: dict[str, dict[str, str]] = {}
    for event in events:
        total, hourly, device, last, keys, children = _writes(event)
        for (counter, unique), child in zip(keys, children):
            fields = counters.setdefault(counter, {})
            for field in (total, hourly, child) if child else (total, hourly):
                fields[field] = fields.get(field, 0) + 1
            if device:
                uniques.setdefault(unique, set()).add(device)
        if last:
            seen.setdefault(LAST.format(site=event["site"]), {})[last] = event["at"]
        pipe.xadd(EVENTS, event, maxlen=STREAM_MAXLEN, approximate=True)
        if event["kind"] == "grant":
            count_grant(pipe, event.get("prov") or "51", event.get("vendor", ""), "ok", at=float(event["at"]),
                        kab=event.get("kab", ""))
    for counter, fields in counters.items():
        pipe.eval(_COUNTERS, 1, counter, COUNTER_TTL, *[part for item in fields.items() for part in item])
    for unique, devices in uniques.items():
        devices = sorted(devices)
        for start in range(0, len(devices), UNIQUES_PER_CALL):
            pipe.eval(_UNIQUES, 1, unique, COUNTER_TTL, *devices[start:start + UNIQUES_PER_CALL])
    for key, fields in seen.items():
        pipe.hset(key, mapping=fields)


def from_record(kind: str, record: dict, *, province: str, at: float | None = None, client=None) -> dict:
    """An event about a stored complaint (delivered, answered), from its plain fields.

    *client* lets a process that never served an arrival (the worker) load the site registry.
    """
    site = None
    if record.get("site_id") and has_app_context():
        site = current_app.extensions["portal_sites"].get(client, record["site_id"])
    event = make_event(kind, site_id=record.get("site_id", ""), campaign=record.get("campaign", ""),
                       lang=record.get("lang", ""), device=record.get("device", ""),
                       variant=record.get("variant", ""), at=at, province=province, site=site)
    if not event["kab"]:  # no site registry in this process: the complaint's own place codes
        for name, column in (("kab", "kabupaten_kode"), ("kec", "kecamatan_kode"), ("desa", "desa_kode")):
            event[name] = _code(record.get(column, ""))
    return event


def count_grant(client_or_pipe, province: str, vendor: str, outcome: str, *, at: float | None = None,
                kab: str = "") -> None:
    """Count one grant outcome (``ok``, ``refused``, ``failed``) of *vendor* on its WITA day."""
    day, _ = wita(time.time() if at is None else at)
    field = f"{_clean(vendor) or 'unknown'}|{outcome}"
    for key in [GRANTS.format(prov=province, day=day)] + ([KAB_GRANTS.format(kab=kab, day=day)] if kab else []):
        client_or_pipe.hincrby(key, field, 1)
        client_or_pipe.expire(key, GRANTS_TTL)


def replay_event(client, event: dict) -> None:
    """Write a spooled (or worker-side) event to Redis in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        add_to(pipe, event, single_node=_single_node(client))
        _execute(pipe)


def _execute(pipe) -> None:
    """Run *pipe*; a write Redis refuses inside the event script is raised as the refusal it is."""
    from redis import ResponseError

    from .redis import as_refusal

    try:
        pipe.execute()
    except ResponseError as error:
        refusal = as_refusal(error)
        if refusal is error:
            raise
        raise refusal from error


def _single_node(client) -> bool:
    """True unless *client* is a Cluster client (whose keys of one event live on several nodes)."""
    from .redis import is_cluster

    return not is_cluster(client)


def spool_event(event: dict) -> None:
    """Keep *event* locally while Redis is down."""
    current_app.extensions["portal_spool"].append("event", event)


def _code(code: str) -> str:
    return (code or "").replace(".", "")


def _clean(value: str) -> str:
    # "|" separates fields and ":" key parts: an opaque campaign id must not smuggle either in.
    return (value or "").replace("|", "_").replace(":", "_")


class EventBuffer:
    """Events of one app in one process, written to Redis in batches by a daemon thread."""

    def __init__(self, client, spool, interval: float, *, limit: int = 5000):
        self.client, self.spool, self.interval, self.limit = client, spool, interval, limit
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pid = 0  # the thread does not survive a fork (gunicorn workers): started per process

    def add(self, event: dict) -> None:
        """Buffer *event*; the thread writes it within ``interval`` seconds."""
        with self._lock:
            self._events.append(event)
            full = len(self._events) >= self.limit
            if self.interval > 0 and self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="portal-events", daemon=True).start()
                atexit.register(self.flush)
        if full:
            self._wake.set()

    def pending(self) -> int:
        """How many events wait to be written."""
        return len(self._events)

    def flush(self, *, redis_ok: bool = True) -> int:
        """Write the buffered events in one pipeline (the spool if Redis cannot take them, or not *redis_ok*)."""
        with self._lock:
            batch, self._events = self._events, []
        if not batch:
            return 0
        from .redis import DOWN_ERRORS, RedisUnavailable

        try:
            if not redis_ok:
                raise RedisUnavailable("circuit open")
            with self.client.pipeline(transaction=False) as pipe:
                add_batch_to(pipe, batch)
                _execute(pipe)
        except DOWN_ERRORS as error:
            log.warning("%d event(s) spooled: Redis unreachable (%s)", len(batch), type(error).__name__)
            try:
                for event in batch:
                    self.spool.append("event", event)
            except OSError:
                log.error("could not spool %d event(s)", len(batch))
        return len(batch)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a surprise must not end the thread: later events still need it
                log.exception("event flush failed")


def buffer():
    """The app's event buffer (created on first use)."""
    found = current_app.extensions.get("portal_event_buffer")
    if found is None:
        from .redis import raw_client

        found = current_app.extensions["portal_event_buffer"] = EventBuffer(
            raw_client(), current_app.extensions["portal_spool"],
            float(current_app.config["EVENT_FLUSH_SECONDS"]))
    return found


def record(event: dict, events: "EventBuffer | None" = None, *, redis_ok: bool | None = None) -> None:
    """Count *event*: buffered for the background write, or at once with ``EVENT_FLUSH_SECONDS = 0``.

    Outside a request, give the buffer and *redis_ok* (the breaker is closed).
    """
    events = events or buffer()
    events.add(event)
    if events.interval <= 0:
        if redis_ok is None:
            from .redis import EXTENSION

            redis_ok = not current_app.extensions[EXTENSION][1].open
        # Written in the request: while the breaker is open, straight to the spool (as the
        # background flush would after waiting on Redis), so the page does not wait.
        events.flush(redis_ok=redis_ok)
