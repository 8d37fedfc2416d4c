"""The plugins' clock for the core's injectable ``clock`` parameters, and their cache of
values derived from the registry (registry lookups cost more than a channel line)."""
import time

TTL = 1.0  # seconds a derived value is cached: setting changes apply within this


def now() -> float:
    """time.time looked up per call, so Limnoria's test clock (timeFastForward) applies."""
    return time.time()


def cached(cache, key, compute, stamp=None, ttl=TTL):
    """``cache[key]``'s value while it is younger than ``ttl`` and was computed for
    the same ``stamp`` (e.g. a topic text), else ``compute()``, stored. A clock that
    stepped back also recomputes: a cached value never outlives ``ttl`` by much."""
    hit = cache.get(key)
    t = now()
    if hit is None or not t < hit[1] <= t + ttl or hit[2] != stamp:
        hit = cache[key] = (compute(), t + ttl, stamp)
    return hit[0]
