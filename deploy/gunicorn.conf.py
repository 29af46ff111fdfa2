"""gunicorn settings for the portal (see the comments for why each value).

Workers = cores: on 2-core machines 2×cores+1 was never faster and up to 28%
slower (docs/performance.md).

Worker class: gthread, chosen by `make bench` (issue 14: every page against a bare Flask
floor on the same settings, Redis appendfsync everysec + the complaint journal, 2 cores
shared with wrk and a busy machine, 50 connections, median of 5 interleaved passes of 8 s):

    class    floor req/s  landing  landing GET  form   complaint  receipt  status  connect  (÷ floor)
    sync         4,067     0.25      0.34       0.18     0.08      0.18     0.23    0.27
    gthread      4,253     0.18      0.28       0.28     0.07      0.19     0.27    0.23
    complaint POST req/s: sync 195 (148-393), gthread 339 (269-364); p99 sync 631 ms, gthread 292 ms

The ratios are within each other's spread on a machine this loaded; the durable path (the
complaint, which waits for the journal's fsync) is clearly better on gthread, whose threads
overlap that wait, and gthread keeps a slow phone from holding a whole worker. gevent was not
retried: performance.md found its tail poor under overload, and it adds a dependency.
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
# A worker is replaced after this many requests, a guard against slow memory growth (every cache
# in the app is bounded). Not every 20,000: under load that replaced each worker every ~10 s,
# and each replacement costs ~0.6 s of CPU to import the app and then cold caches (the site
# registry, the renders), which `make bench` saw as a wide spread between passes (issue 14).
max_requests = 500000
max_requests_jitter = 50000
# A kept-alive connection is closed after this many requests and opens again on whichever worker
# is free. The workers share one listening socket and a connection stays with the worker that
# accepted it: connections opened in a burst while one worker was busy all went to the other,
# which then served everything on one core while the other sat idle (issue 14: `make bench`'s
# slow passes were exactly that, 50 connections on one worker and 0 on the other; nginx's upstream
# keepalive pool can stick the same way). A phone's portal window makes a handful of requests on a
# connection, so 20 costs it nothing; under sustained load it is a reconnect per 20 requests.
keepalive_requests = int(os.environ.get("PORTAL_KEEPALIVE_REQUESTS", 20))

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


def pre_request(worker, req):
    """Close the connection after this request if it has served ``keepalive_requests`` (see above)."""
    if keepalive_requests and req.req_number >= keepalive_requests:
        req.must_close = True


def child_exit(server, worker):
    """Mark an exited worker's metric files dead."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
