"""ThreatNetCache plugin."""
import supybot.callbacks as callbacks


class ThreatNetCache(callbacks.Plugin):
    """ThreatNet Cache plugin."""
    threaded = False


Class = ThreatNetCache
