"""threatnet.names: one way to compare channel and account names."""
import pytest

from threatnet.names import fold


@pytest.mark.parametrize("casemapping, name, folded", [
    ("rfc1459", "[Bot]\\~", "{bot}|^"),
    (None, "[Bot]", "{bot}"),  # the IRC default
    ("nonsense", "[Bot]", "{bot}"),
    ("strict-rfc1459", "[Bot]~", "{bot}~"),
    ("ascii", "[Bot]", "[bot]"),
    ("rfc1459", "Ärger", "Ärger"),  # services do not fold non-ASCII under rfc1459
    ("rfc7613", "Ärger", "ärger"),
])
def test_fold(casemapping, name, folded):
    assert fold(name, casemapping) == folded
