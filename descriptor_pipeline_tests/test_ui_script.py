"""`scripts/ui.sh`: the UI, the daemon and the Data Docs file server come up together, and one
SIGTERM (what Ctrl-C or a supervisor sends) stops every process it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from descriptor_pipeline_tests.conftest import REPO
from descriptor_pipeline_tests.processes import wait_for
from descriptor_pipeline_tests.test_webserver_e2e import GraphQL, free_port


def session_processes(session_id: int) -> list[str]:
    """Every process still in the script's session (its descendants, unless they left it)."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,sid=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [
        line.strip()
        for line in out.splitlines()
        if len(parts := line.split(None, 2)) == 3 and int(parts[1]) == session_id
    ]


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _inherit_ignored_int_and_term() -> None:
    """What a test runner's worker or a supervisor may hand a child: INT and TERM ignored
    (one CI run's worker did, after an earlier test); ui.sh must still stop on SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def test_ui_script_serves_the_reports_and_sigterm_stops_everything(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "dagster_home"
    (data / "data_docs" / "run-1").mkdir(parents=True)
    (data / "data_docs" / "run-1" / "raw.html").write_text("Expectation Validation Result")
    port, docs_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DESCRIPTOR_", "DAGSTER_"))}
    env.update(
        DESCRIPTOR_PIPELINE_DATA=str(data),
        DAGSTER_HOME=str(home),
        DAGSTER_PORT=str(port),
        DATA_DOCS_PORT=str(docs_port),
    )
    log = tmp_path / "ui.log"
    script = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "ui.sh")],
        cwd=REPO,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_inherit_ignored_int_and_term,
    )
    try:
        docs = f"http://127.0.0.1:{docs_port}/run-1/raw.html"
        page = wait_for("the Data Docs server", lambda: fetch(docs), 60, [log])
        assert page == "Expectation Validation Result"
        wait_for("the UI to load the code location", GraphQL(port).location_loaded, 120, [log])
        assert len(session_processes(script.pid)) >= 3  # ui.sh, the file server, dagster dev...

        script.send_signal(signal.SIGTERM)
        assert script.wait(timeout=60) == 143
        deadline = time.monotonic() + 30
        while session_processes(script.pid) and time.monotonic() < deadline:
            time.sleep(1)
        assert session_processes(script.pid) == [], log.read_text()[-3000:]
        assert fetch(docs) is None and fetch(f"http://127.0.0.1:{port}/server_info") is None
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever a failed assertion left
            os.killpg(script.pid, signal.SIGKILL)
