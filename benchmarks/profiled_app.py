"""``streamlit run`` with every script run profiled, one cProfile file per page (page_runs.py).

``python benchmarks/profiled_app.py run app.py --server.port N`` behaves like
``python -m streamlit run app.py ...``, and after each script run (full or fragment) adds that
run's profile to ``$CNNLAB_PROFILE_DIR/<page url path or home>.prof``. Only the script thread is
profiled, so the numbers are the page's own work, not the server's. SIGUSR1 starts the profiles
afresh (page_runs.py sends it after the warm-up, whose first runs are mostly imports).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import signal
import sys
import threading
from pathlib import Path

from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
from streamlit.web import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import scripts.serving.streamlit_nodelay  # noqa: F401  (TCP_NODELAY, as the app is served)

_DIR = Path(os.environ["CNNLAB_PROFILE_DIR"])
_STATS: dict[str, pstats.Stats] = {}
_LOCK = threading.Lock()
_run_script = ScriptRunner._run_script


def _profiled_run_script(self: ScriptRunner, rerun_data: object) -> None:
    profile = cProfile.Profile()
    profile.enable()
    try:
        _run_script(self, rerun_data)
    finally:
        profile.disable()
        manager = self._pages_manager
        info = manager.get_pages().get(manager.current_page_script_hash, {})
        name = info.get("url_pathname") or "home"
        with _LOCK:
            if name in _STATS:
                _STATS[name].add(profile)
            else:
                _STATS[name] = pstats.Stats(profile)
            _STATS[name].dump_stats(_DIR / f"{name}.prof")


def _forget(signum: int, frame: object) -> None:
    with _LOCK:
        _STATS.clear()
        for path in _DIR.glob("*.prof"):
            path.unlink()


ScriptRunner._run_script = _profiled_run_script  # type: ignore[method-assign]
signal.signal(signal.SIGUSR1, _forget)

if __name__ == "__main__":
    sys.exit(cli.main())
