"""gunicorn settings for the portal (see the comments for why each value).

Workers = cores: on 2-core machines 2×cores+1 was never faster and up to 28%
slower (docs/performance.md). The worker class is chosen in `make bench`
figures written in README.md.
"""
import multiprocessing
import os

bind = os.environ.get("PORTAL_BIND", "127.0.0.1:8080")
workers = int(os.environ.get("PORTAL_WORKERS", multiprocessing.cpu_count()))
worker_class = os.environ.get("PORTAL_WORKER_CLASS", "gthread")
threads = int(os.environ.get("PORTAL_THREADS", 8))
keepalive = 5
timeout = 30
graceful_timeout = 30
# Resident pages carry no personal data in URLs except the opaque session token;
# access logs still stay off by default (IP addresses are personal data).
accesslog = os.environ.get("PORTAL_ACCESS_LOG") or None
errorlog = "-"
max_requests = 20000
max_requests_jitter = 2000
