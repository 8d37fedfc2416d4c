"""Registry settings of the ThreatNetCache plugin."""
import supybot.conf as conf
import supybot.registry as registry


def configure(advanced):
    conf.registerPlugin("ThreatNetCache", True)


ThreatNetCache = conf.registerPlugin("ThreatNetCache")
