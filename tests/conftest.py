"""The whole test session runs with Limnoria's throw-away test registry (lab.limnoria), opened
before anything imports supybot.conf: the plugin tests need it, and the lab's IRC client
(used by the integration tests, collected first) imports supybot.ircmsgs and with it
supybot.conf. A registry opened after that would leave conf with Limnoria's defaults (no
`test` network, files in the working directory).
"""
import lab.limnoria  # noqa: F401
