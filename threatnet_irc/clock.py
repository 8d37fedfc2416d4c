"""The plugins' clock for the core's injectable ``clock`` parameters."""
import time


def now() -> float:
    """time.time looked up per call, so Limnoria's test clock (timeFastForward) applies."""
    return time.time()
