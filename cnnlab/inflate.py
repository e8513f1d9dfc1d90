"""Decompression with caps on what is actually produced, never on what a header declares.

A zip member or a gzip stream can say "100 bytes" and inflate to gigabytes. Both readers here
inflate in small chunks and count the bytes they really produce, so memory stays within the cap
whatever the headers say, and the first byte past it ends the read with a ``ValueError``.
"""

from __future__ import annotations

import zipfile
import zlib

CHUNK = 1 << 16
"""Bytes produced per inflate step: small enough to stop within 64 KiB of any cap."""


def gunzip(data: bytes, max_bytes: int, what: str = "The file") -> bytes:
    """Inflate gzip ``data`` (one or more members), refusing output beyond ``max_bytes``."""
    out = bytearray()
    rest = data
    while rest:
        # 16 + MAX_WBITS: expect a gzip header and trailer (CRC and length are checked).
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        pending = rest
        try:
            while pending and not inflater.eof:
                out += inflater.decompress(pending, CHUNK)
                _check(len(out), max_bytes, what)
                pending = inflater.unconsumed_tail
            while not inflater.eof and (piece := inflater.flush(CHUNK)):
                out += piece
                _check(len(out), max_bytes, what)
        except zlib.error:
            raise ValueError(f"{what} is not a valid gzip file: it is damaged.") from None
        if not inflater.eof:
            raise ValueError(f"{what} is not a valid gzip file: it is truncated.")
        # Concatenated gzip members are legal (gzip.decompress reads them all); padding is not.
        rest = inflater.unused_data.lstrip(b"\0")
    return bytes(out)


def read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int, what: str
) -> bytes:
    """One zip member's bytes, reading at most ``max_bytes`` of inflated data.

    ``ZipFile.read`` asks the inflater for everything at once (a 1.5 MB member can allocate
    gigabytes before its declared size is compared); reading in chunks keeps each inflate step
    to :data:`CHUNK` bytes. The zip module stops at the declared size and then checks the CRC,
    so a member that lies about its size fails as damaged.
    """
    out = bytearray()
    with archive.open(info) as handle:
        while piece := handle.read(CHUNK):
            out += piece
            _check(len(out), max_bytes, what)
    return bytes(out)


def _check(produced: int, max_bytes: int, what: str) -> None:
    if produced > max_bytes:
        raise ValueError(
            f"{what} unpacks to more than {_mb(max_bytes)}, the limit: it is too large "
            "(or built to exhaust the server)."
        )


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n:,} bytes"
