"""Limit counters that ride along with the request's own Redis round trip.

A resident page makes one Redis round trip anyway (its session, its complaint record);
the per-client and status-lookup counters of :mod:`portal.limits` are queued on the same
pipeline instead of costing a round trip each. A counter that found no trip to ride
(an error page, a view that never reached Redis) is counted after the view, so every
request is still counted exactly once and the limits stay exact across workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask import g, has_request_context


@dataclass
class Hit:
    """One counter to bump for this request, and how to judge its new count."""

    sha: str
    keys: list
    args: list
    judge: Callable[[object], None]  # raises to refuse the request; handles a NoScript or refused answer


def queue(hit: Hit) -> None:
    """Count *hit* on this request's first Redis trip (or after the view)."""
    g.setdefault("portal_hits", []).append(hit)


def take() -> list[Hit]:
    """The hits still waiting for a trip, now taken by the caller."""
    if not has_request_context():
        return []
    hits = g.pop("portal_hits", None)
    return hits or []


def execute(client, build: Callable[[object], None]) -> list:
    """Run the commands *build* queues on a pipeline, plus the waiting hits, in one round trip.

    Returns the results of *build*'s commands; raises the first error among them. The hits
    are judged afterwards (a refusal raises the 429). With no hit waiting, the commands run
    as they would alone.
    """
    hits = take()
    with client.pipeline(transaction=False) as pipe:
        build(pipe)
        own = len(pipe)
        for hit in hits:
            pipe.evalsha(hit.sha, len(hit.keys), *hit.keys, *hit.args)
        results = pipe.execute(raise_on_error=False)
    # The hits first: each was counted whatever became of the caller's commands.
    for hit, answer in zip(hits, results[own:]):
        hit.judge(answer)
    for result in results[:own]:
        if isinstance(result, Exception):
            raise result
    return results[:own]
