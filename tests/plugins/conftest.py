"""Run Limnoria's PluginTestCase suites under plain pytest.

Importing lab.limnoria opens a throw-away registry in test mode, as Limnoria's own runner
(supybot-test) does, and lets pytest build test classes with methodName='runTest'. Here
pytest is kept from collecting PluginTestCase itself, which `from supybot.test import *`
drags into every test module (see docs/LIMNORIA.md).
"""
import lab.limnoria  # noqa: F401  before anything reads the registry


def pytest_pycollect_makeitem(collector, name, obj):
    if isinstance(obj, type) and obj.__module__ == "supybot.test":
        return []
    return None
