"""Jobs for tests/test_sandbox.py, run by ``python -m cnnlab.sandbox`` in a child process."""

from __future__ import annotations

import os
import time


def echo(payload: bytes, options: dict) -> bytes:
    return payload[::-1] + str(options["n"]).encode()


def refuse(payload: bytes, options: dict) -> bytes:
    raise ValueError("That file is not what it claims to be.")


def spin(payload: bytes, options: dict) -> bytes:
    while True:
        pass


def sleep(payload: bytes, options: dict) -> bytes:
    time.sleep(600)
    return b""


def hog(payload: bytes, options: dict) -> bytes:
    return bytes(2 * 1024**3)


def crash(payload: bytes, options: dict) -> bytes:
    os._exit(7)
