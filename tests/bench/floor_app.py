"""The framework's floor for `make bench`: a bare Flask app, served by the portal's gunicorn settings."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def floor():
    """Nothing but Flask and gunicorn: what no portal page can beat."""
    return "ok"


@app.get("/healthz")
def healthz():
    """What tests.servers.Gunicorn waits for before the run."""
    return "ok"
