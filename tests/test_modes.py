"""Mode batching: ISUPPORT MODES count and the relayed line's byte budget."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from threatnet.modes import DEFAULT_MODES, batch, line_room


def voices(n: int, prefix: str = "agent") -> list[tuple[str, str]]:
    return [("+v", f"{prefix}{i}") for i in range(n)]


def test_count_limit() -> None:
    lines = batch(voices(7), 3, 1000)
    assert [len(line) for line in lines] == [3, 3, 1]
    assert [c for line in lines for c in line] == voices(7)


def test_no_count_limit_still_fits_bytes() -> None:
    room = line_room("#threatnet")
    lines = batch(voices(500), None, room)
    assert sum(len(line) for line in lines) == 500
    for line in lines:
        modes = "+" + "v" * len(line)
        assert len(" ".join([modes] + [nick for _, nick in line]).encode()) <= room


def test_byte_limit_with_long_nicks() -> None:
    lines = batch(voices(10, "x" * 60), 100, 200)
    assert all(len(line) == 3 for line in lines[:-1])  # 3 * 62 + 1 = 187 <= 200


def test_mixed_signs_cost_a_byte() -> None:
    changes = [("+v", "aa"), ("-v", "bb"), ("+v", "cc")]
    # "+v-v+v aa bb cc" is 15 bytes
    assert batch(changes, 10, 15) == [changes]
    assert batch(changes, 10, 14) == [changes[:2], changes[2:]]


def test_oversized_change_gets_its_own_line() -> None:
    assert batch([("+b", "x" * 50), ("+v", "a")], 5, 10) == [[("+b", "x" * 50)], [("+v", "a")]]


def test_modes_zero_means_one_a_line() -> None:
    assert batch(voices(2), 0, 100) == [voices(2)[:1], voices(2)[1:]]


def test_default_and_room() -> None:
    assert DEFAULT_MODES == 3
    # the worst-case relayed line: prefix, " MODE ", channel, " ", room bytes, CRLF
    assert 1 + 64 + 1 + 16 + 1 + 128 + 6 + len("#c") + 1 + line_room("#c") + 2 == 512


@given(st.lists(st.tuples(st.sampled_from(["+v", "-v", "+b"]), st.text(min_size=1, max_size=40))),
       st.one_of(st.none(), st.integers(1, 30)), st.integers(20, 400))
def test_batches_keep_order_and_limits(changes, per_line, room) -> None:
    lines = batch(changes, per_line, room)
    assert [c for line in lines for c in line] == changes
    for line in lines:
        assert line
        if per_line is not None:
            assert len(line) <= per_line
        if len(line) > 1:
            signs = sum(1 for i, (m, _) in enumerate(line) if i == 0 or line[i - 1][0][0] != m[0])
            size = signs + sum(2 + len(a.encode("utf-8", "replace")) for _, a in line)
            assert size <= room
