"""Run Limnoria's PluginTestCase suites under plain pytest.

tests/conftest.py opened a throw-away registry in test mode (lab.limnoria), as Limnoria's own
runner (supybot-test) does, and lab.limnoria lets pytest build test classes with
methodName='runTest'. Here pytest is kept from collecting PluginTestCase itself, which
`from supybot.test import *` drags into every test module (see docs/LIMNORIA.md).
"""


def pytest_pycollect_makeitem(collector, name, obj):
    if isinstance(obj, type) and obj.__module__ == "supybot.test":
        return []
    return None
