"""Build and check fixed VHD footers (Microsoft Virtual Hard Disk Image Format Specification)."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import time
import uuid as uuid_module

SECTOR = 512
FOOTER_SIZE = 512
COOKIE = b"conectix"
FEATURES = 2
FORMAT_VERSION = 0x00010000
FIXED_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF
DISK_TYPE_FIXED = 2
CREATOR_APP = b"ifem"
CREATOR_VERSION = 0x00010000
CREATOR_HOST = b"Wi2k"
#: VHD timestamps count seconds since 2000-01-01 00:00:00 UTC.
VHD_EPOCH = int(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp())

# cookie, features, version, data offset, timestamp, creator app, creator version, creator host,
# original size, current size, cylinders, heads, sectors/track, disk type, checksum, uuid, saved state
_LAYOUT = struct.Struct(">8sIIQI4sI4sQQHBBII16sB")
_CHECKSUM_OFFSET = 64


def chs_geometry(data_size: int) -> tuple[int, int, int]:
    """Return (cylinders, heads, sectors per track) of a disk size as the VHD specification computes them."""
    total = min(data_size // SECTOR, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        sectors, heads = 255, 16
        cyl_times_heads = total // sectors
    else:
        sectors = 17
        cyl_times_heads = total // sectors
        heads = max((cyl_times_heads + 1023) // 1024, 4)
        if cyl_times_heads >= heads * 1024 or heads > 16:
            sectors, heads = 31, 16
            cyl_times_heads = total // sectors
        if cyl_times_heads >= heads * 1024:
            sectors, heads = 63, 16
            cyl_times_heads = total // sectors
    return cyl_times_heads // heads, heads, sectors


def checksum(footer: bytes) -> int:
    """Return the one's complement of the byte sum of a footer, its checksum field counted as zero."""
    zeroed = footer[:_CHECKSUM_OFFSET] + b"\0\0\0\0" + footer[_CHECKSUM_OFFSET + 4 :]
    return ~sum(zeroed) & 0xFFFFFFFF


def make_footer(data_size: int, uuid: bytes | None = None) -> bytes:
    """Return the 512-byte footer of a fixed VHD whose data part is ``data_size`` bytes."""
    if data_size <= 0 or data_size % SECTOR:
        raise ValueError(f"VHD data size must be a positive multiple of {SECTOR}, not {data_size}")
    unique = uuid if uuid is not None else uuid_module.uuid4().bytes
    if len(unique) != 16:
        raise ValueError("VHD unique id must be 16 bytes")
    cylinders, heads, sectors = chs_geometry(data_size)
    fields = _LAYOUT.pack(
        COOKIE,
        FEATURES,
        FORMAT_VERSION,
        FIXED_DATA_OFFSET,
        max(int(time.time()) - VHD_EPOCH, 0),
        CREATOR_APP,
        CREATOR_VERSION,
        CREATOR_HOST,
        data_size,
        data_size,
        cylinders,
        heads,
        sectors,
        DISK_TYPE_FIXED,
        0,
        unique,
        0,
    )
    footer = fields + b"\0" * (FOOTER_SIZE - len(fields))
    value = checksum(footer)
    return footer[:_CHECKSUM_OFFSET] + struct.pack(">I", value) + footer[_CHECKSUM_OFFSET + 4 :]


def make_disk(data_size: int, seed: int) -> bytes:
    """Return a fixed VHD: ``data_size`` bytes of deterministic non-zero content followed by its footer."""
    if data_size <= 0 or data_size % SECTOR:
        raise ValueError(f"VHD data size must be a positive multiple of {SECTOR}, not {data_size}")
    stream = hashlib.shake_256(f"image-factory-disk-{seed}".encode())
    material = stream.digest(data_size + 16)
    return material[:data_size] + make_footer(data_size, uuid=material[data_size:])


def footer_problem(footer: bytes, blob_size: int) -> str | None:
    """Return why ``footer`` is not a valid fixed-VHD footer for a blob of ``blob_size`` bytes, or None."""
    if len(footer) != FOOTER_SIZE:
        return f"footer is {len(footer)} bytes, expected {FOOTER_SIZE}"
    fields = _LAYOUT.unpack_from(footer)
    cookie, _features, _version, data_offset = fields[0:4]
    current_size, disk_type, stored_checksum = fields[9], fields[13], fields[14]
    if cookie != COOKIE:
        return f"bad cookie {cookie!r}, expected {COOKIE!r} (not a VHD, or not ending with its footer)"
    expected = checksum(footer)
    if stored_checksum != expected:
        return f"bad checksum 0x{stored_checksum:08x}, computed 0x{expected:08x} (footer corrupted)"
    if disk_type != DISK_TYPE_FIXED or data_offset != FIXED_DATA_OFFSET:
        return f"disk type {disk_type} is not fixed ({DISK_TYPE_FIXED}); Azure accepts only fixed VHDs"
    if current_size + FOOTER_SIZE != blob_size:
        return (
            f"size mismatch: footer says {current_size} data bytes + {FOOTER_SIZE} footer = "
            f"{current_size + FOOTER_SIZE}, but the blob has {blob_size} bytes"
        )
    return None
