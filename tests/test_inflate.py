"""Inflating with caps on the bytes really produced (gzip streams and zip members)."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib

import pytest
from hostile_cases import deflate_zeros, gzip_zeros, raw_zip

from cnnlab.inflate import CHUNK, gunzip, read_member


def test_gunzip_matches_the_standard_library_within_the_cap():
    data = bytes(range(256)) * 1000
    packed = gzip.compress(data) + gzip.compress(b"tail")  # two members, as gzip allows
    assert gunzip(packed, len(data) + 4) == gzip.decompress(packed)


def test_gunzip_stops_at_the_cap_not_at_the_end_of_a_bomb():
    bomb = gzip_zeros(50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(ValueError, match=r"unpacks to more than 1 MB"):
        gunzip(bomb, 1_000_000, "The file")


@pytest.mark.parametrize(
    ("damage", "words"),
    [(lambda b: b[:-12], "truncated"), (lambda b: b[:10] + b"\xff" * 20, "damaged|truncated")],
)
def test_gunzip_explains_damage(damage, words):
    with pytest.raises(ValueError, match=words):
        gunzip(damage(gzip.compress(bytes(5000))), 10_000)


def test_read_member_reads_honest_members_whole():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.bin", bytes(3 * CHUNK + 5))
    with zipfile.ZipFile(buffer) as archive:
        assert read_member(archive, archive.getinfo("a.bin"), 4 * CHUNK, "a.bin") == bytes(
            3 * CHUNK + 5
        )
        with pytest.raises(ValueError, match="unpacks to more than"):
            read_member(archive, archive.getinfo("a.bin"), CHUNK, "a.bin")


def test_a_member_that_lies_about_its_size_reads_only_what_it_declares():
    real = deflate_zeros(100_000_000)  # declares 100 bytes, inflates to 100 MB
    liar = raw_zip([{"name": "x", "data": real, "method": 8, "file_size": 100,
                     "crc": zlib.crc32(bytes(100))}])  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(liar)) as archive:
        assert read_member(archive, archive.getinfo("x"), 10**9, "x") == bytes(100)
    wrong_crc = raw_zip([{"name": "x", "data": real, "method": 8, "file_size": 100, "crc": 1}])
    with zipfile.ZipFile(io.BytesIO(wrong_crc)) as archive, pytest.raises(zipfile.BadZipFile):
        read_member(archive, archive.getinfo("x"), 10**9, "x")
