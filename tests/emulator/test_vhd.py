"""Fixed VHD footers: layout, checksum and each problem ``footer_problem`` reports."""

from __future__ import annotations

import struct
import time

import pytest

from emulator import vhd


def _with_field(footer: bytes, offset: int, fmt: str, value: int, *, fix_checksum: bool = True) -> bytes:
    changed = bytearray(footer)
    struct.pack_into(fmt, changed, offset, value)
    if fix_checksum:
        struct.pack_into(">I", changed, 64, 0)
        struct.pack_into(">I", changed, 64, ~sum(changed) & 0xFFFFFFFF)
    return bytes(changed)


def test_footer_fields_follow_the_specification() -> None:
    unique = bytes(range(16))
    footer = vhd.make_footer(1024 * 1024, uuid=unique)
    assert len(footer) == 512
    assert footer[0:8] == b"conectix"
    assert struct.unpack_from(">I", footer, 8)[0] == 2
    assert struct.unpack_from(">I", footer, 12)[0] == 0x00010000
    assert struct.unpack_from(">Q", footer, 16)[0] == 0xFFFFFFFFFFFFFFFF
    stamp = struct.unpack_from(">I", footer, 24)[0]
    assert abs(stamp + 946684800 - time.time()) < 60  # seconds since 2000-01-01 UTC
    assert struct.unpack_from(">QQ", footer, 40) == (1024 * 1024, 1024 * 1024)
    assert struct.unpack_from(">I", footer, 60)[0] == 2
    assert footer[68:84] == unique
    assert footer[84] == 0
    assert footer[85:] == b"\0" * 427
    zeroed = footer[:64] + b"\0\0\0\0" + footer[68:]
    assert struct.unpack_from(">I", footer, 64)[0] == ~sum(zeroed) & 0xFFFFFFFF


def test_geometry_covers_the_disk_without_exceeding_it() -> None:
    for size in (512 * 1024, 1024**3, 127 * 1024**3):
        cylinders, heads, sectors = vhd.chs_geometry(size)
        capacity = cylinders * heads * sectors * 512
        assert capacity <= size
        assert capacity > size * 0.95
    assert vhd.chs_geometry(127 * 1024**3) == (65278, 16, 255)


def test_disk_round_trip_is_deterministic_and_not_zero() -> None:
    disk = vhd.make_disk(64 * 1024, seed=7)
    assert len(disk) == 64 * 1024 + 512
    assert disk[: 64 * 1024].count(0) < 1024
    assert vhd.footer_problem(disk[-512:], len(disk)) is None
    again = vhd.make_disk(64 * 1024, seed=7)
    assert again[: 64 * 1024] == disk[: 64 * 1024]
    assert again[-512 + 68 : -512 + 84] == disk[-512 + 68 : -512 + 84]
    assert vhd.make_disk(64 * 1024, seed=8)[:512] != disk[:512]


@pytest.mark.parametrize("size", [0, 100, 513, -512])
def test_sizes_must_be_positive_sector_multiples(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 512"):
        vhd.make_footer(size)
    with pytest.raises(ValueError, match="multiple of 512"):
        vhd.make_disk(size, seed=1)


def test_footer_problem_bad_cookie() -> None:
    footer = vhd.make_footer(4096)
    broken = b"cxsparse" + footer[8:]
    assert "bad cookie" in (vhd.footer_problem(broken, 4096 + 512) or "")


def test_footer_problem_bad_checksum() -> None:
    footer = vhd.make_footer(4096)
    broken = _with_field(footer, 84, ">B", 1, fix_checksum=False)
    assert "bad checksum" in (vhd.footer_problem(broken, 4096 + 512) or "")


def test_footer_problem_not_fixed() -> None:
    footer = vhd.make_footer(4096)
    dynamic = _with_field(footer, 60, ">I", 3)
    assert "not fixed" in (vhd.footer_problem(dynamic, 4096 + 512) or "")
    with_offset = _with_field(footer, 16, ">Q", 512)
    assert "not fixed" in (vhd.footer_problem(with_offset, 4096 + 512) or "")


def test_footer_problem_size_mismatch() -> None:
    footer = vhd.make_footer(4096)
    problem = vhd.footer_problem(footer, 8192 + 512)
    assert problem is not None
    assert "size mismatch" in problem
    assert "8704" in problem


def test_footer_problem_wrong_length() -> None:
    footer = vhd.make_footer(4096)
    assert "511 bytes" in (vhd.footer_problem(footer[1:], 4096 + 512) or "")
