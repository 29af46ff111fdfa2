"""gunicorn settings for the portal (see the comments for why each value).

Workers = cores: on 2-core machines 2×cores+1 was never faster and up to 28%
slower (docs/performance.md).

Worker class: gthread, chosen by `make bench` (2 cores, 50 connections, Redis
with appendfsync always, median of 3 passes; README.md has the table):

    class    landing req/s  landing p99  complaint req/s  floor req/s  floor p99
    sync          1,368        90 ms          719             2,220        48 ms
    gthread       1,426        76 ms          577             2,862        43 ms
    gevent        1,740       119 ms          704             4,676       595 ms

gthread has the best landing tail, overlaps the requests that wait on Redis's
fsync, and does not stall on a slow client the way a sync worker does; gevent
was fastest but its tail under load was 5-10x worse (as performance.md found)
and it adds a dependency.
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

# Prometheus metrics from every worker (portal/results/ops.py): prometheus_client's multiprocess
# mode keeps each worker's counters in files under PROMETHEUS_MULTIPROC_DIR, which /metrics sums.
# The directory is emptied when the master starts (stale files would add old counts) and an exited
# worker's files are marked dead, so its live gauges stop counting while its counters are kept.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(
        os.environ.get("PORTAL_VAR_DIR") or "/var/lib/portal", "prometheus")


def on_starting(server):
    """Start every run with an empty metrics directory."""
    import glob
    import tempfile

    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    try:
        os.makedirs(directory, exist_ok=True)
        for path in glob.glob(os.path.join(directory, "*.db")):
            os.unlink(path)
    except OSError:  # not writable here (a development run): a private directory instead
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="portal-prometheus-")


def child_exit(server, worker):
    """Mark an exited worker's metric files dead."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
