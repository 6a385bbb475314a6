"""Undeliverable units kept for re-routing: bounded in bytes and in time."""

from __future__ import annotations

from dranspose.services.parking import ParkingLot


def test_byte_bound_drops_oldest() -> None:
    lot = ParkingLot(max_bytes=250, max_age=60)
    assert lot.park("w0", 1, "a", [b"x" * 100]) == []
    assert lot.park("w0", 2, "a", [b"x" * 100]) == []
    assert lot.park("w1", 3, "a", [b"x" * 100]) == [("w0", 1)]
    assert lot.nbytes == 200 and len(lot) == 2


def test_expiry_and_take() -> None:
    lot = ParkingLot(max_bytes=1 << 20, max_age=5)
    lot.park("w0", 1, "a", [b"ab"])
    lot.park("w1", 2, "a", [b"cd"])
    item = lot.take("w1", 2, "a")
    assert item is not None and item.frames == [b"cd"]
    assert lot.take("w1", 2, "a") is None
    assert lot.expire(now=lot.items[("w0", 1, "a")].since + 6) == [("w0", 1)]
    assert lot.nbytes == 0


def test_take_worker_returns_its_units_in_order() -> None:
    lot = ParkingLot(max_bytes=1 << 20, max_age=5)
    for e in range(4):
        lot.park(f"w{e % 2}", e, "a", [b"z"])
    assert [p.event for p in lot.take_worker("w0")] == [0, 2]
    assert len(lot) == 2 and lot.nbytes == 2
