"""Durable storage of complaints: one record hash plus one stream entry, written atomically.

Keys share the province hash tag, so the record and the stream entry are
written by one Lua script even on Redis Cluster (docs/scale.md §1.3):

- ``portal:{p<prov>}:complaint:<tracking>``  hash, the record
- ``portal:{p<prov>}:complaints``            stream, one entry per complaint for the delivery worker
- ``portal:{p<prov>}:complaints:held``       sorted set (by arrival time) of complaints kept for review
  (honeypot, fill time, quota): the record is written the same way, with status ``held``
  and ``held_reason``, but nothing goes on the stream until an operator releases it
  (:mod:`portal.complaints.held`)

Name and contact are sealed together (``sealed_contact``) and so are the text
and the place details (``sealed_text``); everything else is plain so status
pages and analytics need no key. The script writes nothing when the record
exists, so replaying a spooled complaint twice cannot duplicate it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import redis

from ..redis import NotReplicatedError, as_refusal, is_cluster

RECORD = "portal:{{p{prov}}}:complaint:{tn}"
STREAM = "portal:{{p{prov}}}:complaints"
HELD = "portal:{{p{prov}}}:complaints:held"
#: Set of tracking numbers filed with one contact, by its keyed blind index (portal.contact_index).
CONTACT = "portal:{{p{prov}}}:contact:{index}"

#: Plain (non-personal) fields of a record.
PLAIN_FIELDS = (
    "tracking", "kind", "category", "incident_date", "kabupaten_kode", "kabupaten",
    "kecamatan_kode", "kecamatan", "desa_kode", "desa", "anonim", "rahasia",
    "consent_version", "consented_at", "site_id", "campaign", "lang", "device", "created_at", "variant",
)

_WRITE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('XADD', KEYS[2], '*', 'tracking', ARGV[1])
if KEYS[3] then redis.call('SADD', KEYS[3], ARGV[1]) end
return 1
"""

# Same as _WRITE, but the complaint waits in the review queue instead of the stream.
_WRITE_HELD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if KEYS[3] then redis.call('SADD', KEYS[3], ARGV[1]) end
return 1
"""


def record_key(province: str, tracking: str) -> str:
    """Redis key of a complaint record."""
    return RECORD.format(prov=province, tn=tracking)


def stream_key(province: str) -> str:
    """Redis key of the province's complaint stream."""
    return STREAM.format(prov=province)


def contact_key(province: str, index: str) -> str:
    """Redis key of the tracking numbers filed with one contact (by its blind index)."""
    return CONTACT.format(prov=province, index=index)


def held_key(province: str) -> str:
    """Redis key of the province's review queue of held complaints."""
    return HELD.format(prov=province)


@dataclass
class StoredComplaint:
    """A complaint ready to store: plain fields and the two sealed parts."""

    plain: dict
    sealed_text: str
    sealed_contact: str = ""
    history: list = field(default_factory=list)
    #: Why the complaint waits for review ("honeypot", "too_fast", "device_quota", "site_quota"); "" if not.
    held_reason: str = ""
    #: Keyed HMAC of the normalised contact (portal.contact_index), "" without a contact.
    contact_index: str = ""

    def to_fields(self) -> dict:
        """Return the record's hash fields."""
        fields = {k: str(self.plain.get(k, "")) for k in PLAIN_FIELDS}
        fields["sealed_text"] = self.sealed_text
        if self.sealed_contact:
            fields["sealed_contact"] = self.sealed_contact
        if self.contact_index:
            fields["contact_index"] = self.contact_index
        status = "held" if self.held_reason else "received"
        fields["status"] = status
        if self.held_reason:
            fields["held_reason"] = self.held_reason
        fields["history"] = json.dumps(self.history or [[status, self.plain["created_at"]]])
        return fields

    def to_spool(self) -> dict:
        data = {"plain": self.plain, "sealed_text": self.sealed_text, "sealed_contact": self.sealed_contact}
        if self.held_reason:
            data["held_reason"] = self.held_reason
        if self.contact_index:
            data["contact_index"] = self.contact_index
        return data

    @classmethod
    def from_spool(cls, data: dict) -> "StoredComplaint":
        return cls(plain=data["plain"], sealed_text=data["sealed_text"], sealed_contact=data.get("sealed_contact", ""),
                   held_reason=data.get("held_reason", ""), contact_index=data.get("contact_index", ""))


def script(client: redis.Redis, source: str):
    """*source* as a redis-py Script of *client*: EVALSHA, loaded again only after a Redis restart."""
    scripts = client.__dict__.setdefault("_portal_scripts", {})
    found = scripts.get(source)
    if found is None:
        found = scripts[source] = client.register_script(source)
    return found


def write(client: redis.Redis, province: str, complaint: StoredComplaint, *, replicas: int = 0,
          wait_timeout: float = 0.2) -> bool:
    """Store the record and queue it for delivery (or for review, if held); False if it was already stored.

    With *replicas* > 0 the script is followed by ``WAIT replicas`` on the same connection (WAIT
    counts the replicas that have this connection's writes); fewer confirmations within
    *wait_timeout* raise :class:`NotReplicatedError`: the write may not survive a failover.
    """
    tracking = complaint.plain["tracking"]
    fields = []
    for name, value in complaint.to_fields().items():
        fields += [name, value]
    index = [contact_key(province, complaint.contact_index)] if complaint.contact_index else []
    if complaint.held_reason:
        source, keys = _WRITE_HELD, [record_key(province, tracking), held_key(province), *index]
        args = [tracking, complaint.plain["created_at"], *fields]
    else:
        source, keys = _WRITE, [record_key(province, tracking), stream_key(province), *index]
        args = [tracking, *fields]
    try:
        if replicas <= 0:
            return bool(script(client, source)(keys=keys, args=args))
        # On a cluster, WAIT must go to the primary of the record's slot, on the write's connection.
        node = client.get_node_from_key(keys[0]).redis_connection if is_cluster(client) else client
        with node.pipeline(transaction=False) as pipe:
            script(node, source)(keys=keys, args=args, client=pipe)
            pipe.wait(replicas, max(1, int(wait_timeout * 1000)))
            created, confirmed = pipe.execute()
    except redis.ResponseError as error:
        raise as_refusal(error) from error  # a refused write is "Redis is down": spool it
    if confirmed < replicas:
        raise NotReplicatedError(f"{confirmed} of {replicas} replica(s) confirmed in {wait_timeout} s",
                                 created=bool(created))
    return bool(created)


def read(client: redis.Redis, province: str, tracking: str) -> dict | None:
    """Return a record's fields as strings, or None."""
    raw = client.hgetall(record_key(province, tracking))
    if not raw:
        return None
    return {k.decode(): v.decode() for k, v in raw.items()}

