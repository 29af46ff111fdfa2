"""One HTTP POST with the error translation every HTTP channel shares."""
from __future__ import annotations

import threading

import requests

from .base import PermanentError, TemporaryError

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Codes that mean "not now" rather than "never".
RETRYABLE = {408, 425, 429}


class Sessions:
    """One ``requests.Session`` per delivery thread: a Session is not meant to be shared between threads."""

    def __init__(self):
        self._local = threading.local()

    def get(self) -> requests.Session:
        """This thread's session (keeps its connection to the receiver open between sends)."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


def post(session: requests.Session, url: str, *, body: bytes, headers: dict, timeout: float) -> requests.Response:
    """POST *body* and return the 2xx response; raise TemporaryError or PermanentError otherwise."""
    try:
        response = session.post(url, data=body, headers=headers, timeout=(min(timeout, 5.0), timeout),
                                allow_redirects=False)
    except requests.Timeout:
        # The receiver may have stored it anyway; the idempotency key makes the resend safe.
        raise TemporaryError("timeout") from None
    except requests.RequestException as error:
        raise TemporaryError(type(error).__name__) from None
    code = response.status_code
    if code in RETRYABLE or code >= 500:
        raise TemporaryError(f"HTTP {code}", code=code)
    if not 200 <= code < 300:
        raise PermanentError(f"HTTP {code}", code=code)
    return response
