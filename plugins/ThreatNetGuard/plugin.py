"""ThreatNetGuard plugin."""
import supybot.callbacks as callbacks


class ThreatNetGuard(callbacks.Plugin):
    """ThreatNet Guard plugin."""
    threaded = False


Class = ThreatNetGuard
