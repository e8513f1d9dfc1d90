"""Keep the garbage collector off the request path once torch is loaded.

Streamlit runs a full ``gc.collect()`` after every script run (``runner.postScriptGC``). With
torch imported the heap holds about a million long-lived objects (modules, functions, classes),
and walking them took ~110 ms here while holding the GIL, so the message that ends the rerun
waited behind it: every widget change on every page was ~110 ms slower than on a page without
torch. Freezing what is alive after the imports moves those objects out of the collector's
sight; the collections after each run then only walk what the runs themselves created, and
still free it.
"""

from __future__ import annotations

import gc
import sys

_modules_when_frozen = 0


def freeze_import_heap() -> None:
    """Collect, then freeze everything alive, when modules were imported since the last freeze.

    Call it early in each run. It does work only after new imports (a page visited for the first
    time), a handful of times per server. The objects it freezes are never collected by the
    cycle collector again; nearly all of them are modules and what they define, which live as
    long as the process anyway (reference counting still frees anything else that dies).
    """
    global _modules_when_frozen
    if len(sys.modules) > _modules_when_frozen:
        gc.collect()
        gc.freeze()
        _modules_when_frozen = len(sys.modules)


FIGURES_PER_CACHE = 32
"""Entries of each cache that keeps built Plotly figures for every session. A figure holds
~400–700 objects the collector tracks, and Streamlit's collection after every run walks all of
them (they are created after the import freeze): 32 figures per cache keep that walk to a few
milliseconds even when a class has filled every cache, while the few configurations most
students look at (the defaults, the presets) stay shared."""
