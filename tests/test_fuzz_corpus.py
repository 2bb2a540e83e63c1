"""Replays tests/fuzz_corpus/: every input the fuzzer (tools/fuzz_api.py) ever flagged must now
return or raise one of the documented errors, leave its inputs alone and give the same bits
under every kernel set. The cases run in a subprocess, so a crash that comes back fails this
test and names its case instead of killing the test run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fuzz_corpus"
FUZZER = ROOT / "tools" / "fuzz_api.py"


@pytest.mark.single_isa
def test_fuzz_corpus_replays_cleanly():
    cases = sorted(CORPUS.glob("*.json"))
    assert cases, "tests/fuzz_corpus/ holds no case"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, str(FUZZER), "--replay", str(CORPUS)], capture_output=True, text=True,
                          env=env, timeout=300)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    started = [line["file"] for line in lines if line.get("start")]
    finished = {line["file"]: line for line in lines if not line.get("start")}
    if proc.returncode not in (0, 1):
        running = [f for f in started if f not in finished]
        pytest.fail(f"replay died (exit status {proc.returncode}) in {running}:\n{proc.stderr[-3000:]}")
    bad = {f: r for f, r in finished.items() if r["outcome"] not in ("ok", "error")}
    assert not bad, json.dumps(bad, indent=1)
    assert sorted(finished) == [p.name for p in cases]


@pytest.mark.single_isa
def test_corpus_entries_are_well_formed():
    for path in sorted(CORPUS.glob("*.json")):
        entry = json.loads(path.read_text())
        assert entry["case"]["op"].startswith("tensorops"), path.name
        assert entry["found"]["outcome"] in ("crash", "hang", "unexpected-exception", "modified-input",
                                             "isa-mismatch", "thread-mismatch"), path.name
