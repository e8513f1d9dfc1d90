"""The engine stays UI-free: no module under cnnlab/ imports Streamlit, directly or indirectly."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "cnnlab"


def _modules() -> list[str]:
    return sorted(
        "cnnlab"
        + ("." + ".".join(p.relative_to(ENGINE).with_suffix("").parts)).removesuffix(".__init__")
        for p in ENGINE.rglob("*.py")
    )


def test_no_engine_file_mentions_streamlit_imports():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "streamlit"]
    assert not offenders


def test_importing_every_engine_module_loads_no_streamlit():
    # A transitive import (a helper that imports streamlit) is caught only by really importing.
    code = (
        "import importlib, sys\n"
        f"for m in {_modules()!r}:\n"
        "    if m.endswith('__main__'): continue\n"
        "    importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit')\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ENGINE.parent, timeout=120)
