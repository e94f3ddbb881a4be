"""The Responses store: what it keeps, and its bounds (size: oldest first; age)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from addon import response_store, sqlite_store
from addon.response_store import ResponseStore


def test_save_load_delete(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "sub" / "r.sqlite3", 10_000, 3600)
    store.save("resp_1", {"id": "resp_1", "output": []}, [{"role": "user", "content": "hi"}])
    assert store.load("resp_1") == ({"id": "resp_1", "output": []}, [{"role": "user", "content": "hi"}])
    assert store.load("resp_2") is None
    assert store.delete("resp_1") and not store.delete("resp_1") and store.load("resp_1") is None


def test_the_oldest_go_first_when_the_store_is_full(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3", 1000, 3600)
    for i in range(10):
        store.save(f"resp_{i}", {"id": f"resp_{i}", "pad": "x" * 150}, [])
    kept = [i for i in range(10) if store.load(f"resp_{i}") is not None]
    assert kept and kept == list(range(10 - len(kept), 10)) and len(kept) < 10


def test_expired_responses_are_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3", 10_000, 60)
    store.save("resp_old", {"id": "resp_old"}, [])
    later = time.time() + 120
    monkeypatch.setattr(sqlite_store.time, "time", lambda: later)
    assert store.load("resp_old") is None
    store.save("resp_new", {"id": "resp_new"}, [])
    monkeypatch.undo()
    assert store.load("resp_new") is not None


def test_a_load_waits_for_a_save_in_flight(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3", 10_000, 3600)

    async def chain() -> object:
        store.save_soon("resp_1", {"id": "resp_1"}, [])
        return await store.load_async("resp_1")

    assert asyncio.run(chain()) == ({"id": "resp_1"}, [])


def test_the_options_pick_the_file(tmp_path: Path) -> None:
    options = SimpleNamespace(
        ai_responses_store="", ai_recordings=str(tmp_path), ai_responses_store_mb=1, ai_responses_store_days=2
    )
    store = response_store.store_for(options)
    assert store.path == tmp_path / "responses.sqlite3" and store.max_bytes == 1024 * 1024
    assert store.max_age == 2 * 86400 and response_store.store_for(options) is store
    options.ai_responses_store = str(tmp_path / "elsewhere.db")
    assert response_store.store_for(options).path == tmp_path / "elsewhere.db"
