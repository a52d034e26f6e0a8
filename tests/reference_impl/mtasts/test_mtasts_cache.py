"""The SQLite policy cache (RFC 8461 sections 3.2, 3.3, 5.1): lifetime from the last fetch,
the failure note per version id, persistence across reopen, and the discovery driver glue."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference_impl.mta.clock import ManualClock
from reference_impl.mtasts.cache import CachedPolicy, CacheError, FailureNote, PolicyCache
from reference_impl.mtasts.discovery import PolicyOutcome, StsFailure
from reference_impl.mtasts.policy import Mode, parse_policy

START = 1_700_000_000.0
TEXT = "version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 604800\n"
TEXT2 = "version: STSv1\nmode: testing\nmx: *.example.test\nmax_age: 3600\n"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def cache(tmp_path: Path, clock: ManualClock) -> Iterator[PolicyCache]:
    with PolicyCache(tmp_path / "sts.sqlite", clock=clock) as c:
        yield c


def test_store_and_get(cache: PolicyCache) -> None:
    stored = cache.store("Example.Test.", "id1", TEXT, parse_policy(TEXT))
    assert stored == CachedPolicy("example.test", "id1", TEXT, parse_policy(TEXT), START, START + 604800)
    assert cache.get("example.test") == stored
    assert cache.get("EXAMPLE.test.") == stored
    assert cache.get("other.test") is None


def test_max_age_counts_from_the_last_fetch(cache: PolicyCache, clock: ManualClock) -> None:
    cache.store("example.test", "id1", TEXT, parse_policy(TEXT))
    clock.advance(5 * 86400)
    again = cache.store("example.test", "id1", TEXT, parse_policy(TEXT))
    # Section 3.2: cache "for up to this value from the last policy fetch time".
    assert (again.fetched_at, again.expires_at) == (START + 5 * 86400, START + 5 * 86400 + 604800)
    assert cache.get("example.test") == again


def test_new_policy_replaces_the_old(cache: PolicyCache) -> None:
    cache.store("example.test", "id1", TEXT, parse_policy(TEXT))
    cache.store("example.test", "id2", TEXT2, parse_policy(TEXT2))
    entry = cache.get("example.test")
    assert entry is not None and entry.record_id == "id2" and entry.policy.mode is Mode.TESTING
    assert entry.expires_at == START + 3600
    assert len(cache.entries()) == 1


def test_expired_entries_are_returned_and_purged(cache: PolicyCache, clock: ManualClock) -> None:
    cache.store("a.test", "id1", TEXT2, parse_policy(TEXT2))
    cache.store("b.test", "id1", TEXT, parse_policy(TEXT))
    clock.advance(3600)
    entry = cache.get("a.test")
    assert entry is not None and entry.is_expired(clock.now())
    assert [e.domain for e in cache.entries()] == ["a.test", "b.test"]  # soonest expiry first
    assert cache.purge_expired() == 1
    assert cache.get("a.test") is None and cache.get("b.test") is not None


def test_failure_note(cache: PolicyCache, clock: ManualClock) -> None:
    assert cache.last_failure("example.test") is None
    cache.store("example.test", "id1", TEXT, parse_policy(TEXT))
    clock.advance(10)
    assert cache.note_failure("example.test", "id2") == FailureNote("example.test", "id2", START + 10)
    clock.advance(10)
    cache.note_failure("Example.test", "id3")
    assert cache.last_failure("example.test") == FailureNote("example.test", "id3", START + 20)
    # Section 3.3: a failed fetch never removes the cached policy.
    entry = cache.get("example.test")
    assert entry is not None and entry.record_id == "id1"
    # A successful fetch clears the note.
    cache.store("example.test", "id3", TEXT, parse_policy(TEXT))
    assert cache.last_failure("example.test") is None


def test_failure_note_without_a_policy(cache: PolicyCache) -> None:
    cache.note_failure("new.test", "id9")
    assert cache.get("new.test") is None
    assert cache.last_failure("new.test") == FailureNote("new.test", "id9", START)


def test_entries_survive_reopen(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "sts.sqlite"
    with PolicyCache(path, clock=clock) as first:
        stored = first.store("example.test", "id1", TEXT, parse_policy(TEXT))
        first.note_failure("example.test", "id2")
        note = first.last_failure("example.test")
    with PolicyCache(str(path), clock=clock) as second:
        assert second.get("example.test") == stored
        assert second.last_failure("example.test") == note
        mode = second._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_remove(cache: PolicyCache) -> None:
    cache.store("example.test", "id1", TEXT, parse_policy(TEXT))
    cache.note_failure("example.test", "id2")
    cache.remove("example.test")
    assert cache.get("example.test") is None and cache.last_failure("example.test") is None


def test_unparsable_stored_text_reads_as_absent(cache: PolicyCache) -> None:
    cache.store("example.test", "id1", TEXT, parse_policy(TEXT))
    cache._conn.execute("UPDATE policies SET policy_text = 'garbage'")
    assert cache.get("example.test") is None
    assert cache.entries() == []


def test_closed_cache_refuses(tmp_path: Path, clock: ManualClock) -> None:
    c = PolicyCache(tmp_path / "sts.sqlite", clock=clock)
    c.close()
    c.close()  # idempotent
    with pytest.raises(CacheError, match="closed"):
        c.get("example.test")


def test_not_a_database(tmp_path: Path, clock: ManualClock) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CacheError, match="cannot open"):
        PolicyCache(path, clock=clock)


def _outcome(**kwargs: object) -> PolicyOutcome:
    base: dict[str, object] = {
        "policy": None,
        "source": "none",
        "record_id": None,
        "store": False,
        "failure": None,
        "reason": "test",
    }
    base.update(kwargs)
    return PolicyOutcome(**base)  # type: ignore[arg-type]


def test_record_outcome(cache: PolicyCache) -> None:
    fresh = _outcome(policy=parse_policy(TEXT), source="fresh", record_id="id1", store=True, policy_text=TEXT)
    stored = cache.record("example.test", fresh)
    assert stored is not None and cache.get("example.test") == stored
    failed = _outcome(
        policy=parse_policy(TEXT),
        source="cache",
        record_id="id1",
        failure=StsFailure.FETCH_ERROR,
        failed_fetch_id="id2",
    )
    assert cache.record("example.test", failed) is None
    note = cache.last_failure("example.test")
    assert note is not None and note.record_id == "id2"
    assert cache.record("example.test", _outcome()) is None
    with pytest.raises(CacheError, match="TXT id"):
        cache.record("x.test", _outcome(policy=parse_policy(TEXT), store=True, policy_text=TEXT))


def test_connection_is_closed_on_exit(tmp_path: Path, clock: ManualClock) -> None:
    with PolicyCache(tmp_path / "sts.sqlite", clock=clock) as c:
        conn = c._conn
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
