"""Configuration defaults. Every key can be set as ``PORTAL_<KEY>`` in the environment.

Each key is documented once, in ``deploy/portal.env.example``. Secrets have no
default: the app refuses to start without them outside testing.
"""


class Defaults:
    """Values used when the environment does not set a key."""

    # Redis: any Redis 6.2+; `make run` points this at the embedded server.
    REDIS_URL = ""
    REDIS_POOL_SIZE = 32
    REDIS_TIMEOUT = 0.5          # seconds per command; the page falls back after this
    REDIS_RETRY_AFTER = 5.0      # seconds the circuit stays open after a Redis failure
    # More than one machine (issue 15): Sentinel, and the replica confirmation of complaints.
    REDIS_SENTINELS = ""         # host:port,host:port of Sentinels; set: the primary comes from them
    REDIS_SERVICE = "portal"     # the Sentinel service (master) name
    REDIS_SENTINEL_PASSWORD = "" # the Sentinels' own password (environment only), if they have one
    REDIS_MIN_REPLICAS = 0       # replicas that must confirm a complaint (WAIT) before its receipt
    REDIS_WAIT_TIMEOUT = 0.2     # seconds WAIT may take; fewer confirmations: the complaint is spooled
    EVENT_FLUSH_SECONDS = 1.0    # impressions/grants/complaint counts are written in batches this often (0: at once)

    # Secrets (environment only).
    SECRET_KEY = ""              # signs form timestamps and fallback session tokens
    DEVICE_KEY = ""              # keys the pseudonymous device id (HMAC of the MAC)
    DATA_KEYS = ""               # Fernet keys, newest first, comma-separated: personal data at rest

    # Where this deployment runs.
    PROVINCE = "51"              # Kemendagri code; names the complaint stream's hash tag
    PUBLIC_URL = "http://127.0.0.1:8080"  # how residents reach the portal (RFC 8908 URLs)
    PROXY_COUNT = 0              # reverse proxies in front of gunicorn (nginx: 1)
    VAR_DIR = "var"              # spool, complaint journal and embedded Redis data

    # Resident journey.
    SESSION_TTL = 900            # seconds a portal session lives
    FAST_LANE = True             # answer the landing again and the status page outside Flask (portal/fast_lane.py)
    MAX_CONTENT_LENGTH = 64 * 1024  # bytes of a request body; larger ones get a 413 page unread
    DEFAULT_LANGUAGE = "id"
    MIN_FILL_SECONDS = 3         # a complaint form sent faster than this is a bot
    DEVICE_LIMIT = 3             # complaints per device per hour
    SITE_LIMIT = 30              # complaints per site per hour
    REQUEST_LIMIT = 600          # requests per client address per minute (portal/limits.py)
    SITE_REQUEST_LIMIT = 300     # complaint-form requests per site per minute
    STATUS_LIMIT = 60            # status lookups per client address per 10 minutes
    HELD_LIMIT = 60              # complaints held for review per client address per hour
    DEFAULT_MINUTES = 120        # internet minutes granted when a site sets none
    MIKROTIK_LOGIN_MODE = "trial"  # trial | account (shared hotspot user)
    MIKROTIK_USERNAME = ""
    MIKROTIK_PASSWORD = ""
    OPENNDS_FASKEY = ""          # fleet faskey of openNDS FAS levels 1-4; a site's own faskey secret overrides

    # RADIUS login mode (site setting login_mode = "radius"; deploy/freeradius/).
    RADIUS_API_TOKEN = ""        # shared secret FreeRADIUS sends; empty refuses every call
    RADIUS_CREDENTIAL_TTL = 120  # seconds a one-time credential lives (capped at SESSION_TTL)
    RADIUS_ACCOUNTING_TTL = 86400  # seconds an accounting record is kept after the session
    RADIUS_INTERIM_INTERVAL = 300  # Acct-Interim-Interval sent to gateways; 0 leaves theirs

    # Delivery to SP4N LAPOR! and other channels (portal/delivery/).
    DELIVERY_CONFIG = ""         # path of the JSON/TOML channel file; secrets by *_env reference
    OUTBOX_DIR = ""              # a local outbox channel (one JSON file per complaint); empty: off
    METRICS_TOKEN = ""           # bearer token for /metrics; empty turns /metrics off
    WORKER_STALE_SECONDS = 60    # /readyz shows a worker unseen for longer as stale

    # Privacy notice (PDP law: purpose, retention, rights, the DPO's contact).
    PRIVACY_NOTICE_VERSION = "2026-11-v1"
    RETENTION_DAYS = 90          # days text, name and contact are kept after delivery
    DPO_NAME = "Pejabat Pelindungan Data Pribadi, Diskominfos Provinsi Bali"
    DPO_EMAIL = "ppdp@diskominfos.baliprov.go.id"
    LAPOR_URL = "https://www.lapor.go.id"
    # Results and fleet health (issue 13): see deploy/portal.env.example.
    OPEN_DATA_MIN_COUNT = 10     # open-data counts below this are published as suppressed
    EVENT_RETENTION_DAYS = 30    # days raw funnel events (stream entries) are kept
    HELD_RETENTION_DAYS = 30     # days a held (never released) complaint keeps text and contact
    FLEET_STALE_SECONDS = 900    # no heartbeat for this long: stale
    FLEET_OFFLINE_SECONDS = 3600  # no heartbeat for this long: offline (alerted)
    FLEET_HOLD_DOWN_SECONDS = 900  # a site must stay in its new state this long before an alert
    ALERT_WEBHOOK_URL = ""       # offline/back alerts POSTed here, signed with ALERT_WEBHOOK_SECRET
    ALERT_WEBHOOK_SECRET = ""
    ALERT_EMAIL_TO = ""          # comma-separated; empty turns e-mail alerts off
    ALERT_EMAIL_FROM = "portal-alerts@localhost"
    ALERT_SMTP_HOST = "localhost"
    ALERT_SMTP_PORT = 25
    LOG_FORMAT = "json"          # "json" (one object per line, with request ids) or "text"

    # Campaign studio (portal/studio, issue 11).
    STUDIO_LOCKOUT_FAILURES = 5  # failed sign-ins in a row that lock a staff account
    STUDIO_LOCKOUT_MINUTES = 15  # how long the lock lasts
    STUDIO_SESSION_HOURS = 8     # a staff sign-in lasts this long (cookie session)
    STUDIO_IMAGE_MAX_KB = 40     # a campaign image after re-encoding must fit in this
