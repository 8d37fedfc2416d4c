"""Registry settings of the ThreatNetGuard plugin."""
import supybot.conf as conf
import supybot.registry as registry


def configure(advanced):
    conf.registerPlugin("ThreatNetGuard", True)


ThreatNetGuard = conf.registerPlugin("ThreatNetGuard")
