"""The public surface stays in step with its description: the typed stub of the compiled
module, and docs/api.md (every public name listed, existing, documented and tested).

When this fails after a merge: rebuild and run `python tools/gen_core_stubs.py` for the stub;
move the family's rows in docs/api.md from "Planned" up to their namespace's table, and add
rows for new names."""
from __future__ import annotations

import importlib
import inspect
import importlib.util
import re
from pathlib import Path

import pytest

import tensorops as tops
from tensorops import _core

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
STUB = ROOT / "python" / "tensorops" / "_core.pyi"
PLANNED_HEADING = "## Planned (not yet implemented)"
NAMESPACES = ("tensorops", "tensorops.nn", "tensorops.nn.functional")
_ROW = re.compile(r"^\|\s*`(tensorops(?:\.\w+)*)`\s*\|")

pytestmark = pytest.mark.single_isa


def _load_stub_generator():
    spec = importlib.util.spec_from_file_location("gen_core_stubs", ROOT / "tools" / "gen_core_stubs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _listed_names() -> tuple:
    """(implemented, planned): the dotted names in the rows of docs/api.md, in order."""
    implemented, planned = [], []
    target = implemented
    for line in API_DOC.read_text().splitlines():
        if line.startswith("## "):
            target = planned if line.strip() == PLANNED_HEADING else implemented
        match = _ROW.match(line)
        if match:
            target.append(match.group(1))
    return implemented, planned


IMPLEMENTED, PLANNED = _listed_names()


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        if not hasattr(obj, part):
            obj = importlib.import_module(".".join(parts[: i + 1]))  # a subpackage not yet imported
        else:
            obj = getattr(obj, part)
    return obj


def _test_sources() -> dict:
    here = Path(__file__).resolve()
    return {p.name: p.read_text() for p in sorted(here.parent.glob("test_*.py")) if p != here}


_FOREIGN_PREFIXES = ("torch", "np", "numpy", "TF")


def _exercised_in(name: str, sources: dict) -> list:
    """Test files that call or name `name`: as an attribute of anything but torch/NumPy
    (tests often reach ops through a parametrized module `m`), an import, or a string that a
    test resolves with getattr."""
    attribute = re.compile(r"([A-Za-z_][\w.]*)\.%s\b" % re.escape(name))
    imported = re.compile(r"^\s*from\s+\S+\s+import\s+[^\n]*\b%s\b" % re.escape(name), re.M)
    quoted = re.compile(r"""["']%s["']""" % re.escape(name))
    found = []
    for filename, text in sources.items():
        if any(m.group(1).split(".")[0] not in _FOREIGN_PREFIXES for m in attribute.finditer(text)) \
                or imported.search(text) or quoted.search(text):
            found.append(filename)
    return found


# ---- the compiled module and its stub ---------------------------------------------------------

def test_stub_matches_the_compiled_module():
    generator = _load_stub_generator()
    assert STUB.exists(), "python/tensorops/_core.pyi is missing: run python tools/gen_core_stubs.py"
    drift = generator.differences(_core, STUB.read_text())
    assert not drift, "the stub and the compiled module disagree (run python tools/gen_core_stubs.py):\n" + \
        "\n".join(drift)


def test_stub_generator_reproduces_the_names_of_the_stub():
    generator = _load_stub_generator()
    rendered = generator.stub_table(generator.render(_core))
    assert rendered == generator.stub_table(STUB.read_text())
    assert set(rendered) == {n for n in dir(_core) if not n.startswith("__")}


def test_package_is_marked_typed():
    assert (ROOT / "python" / "tensorops" / "py.typed").exists()


def test_stub_generator_detects_drift():
    generator = _load_stub_generator()
    text = STUB.read_text()
    renamed = re.sub(r"def embedding\(indices:", "def embedding(idx:", text)
    assert renamed != text
    assert any(line.startswith("embedding: parameters") for line in generator.differences(_core, renamed))
    dropped = re.sub(r"\ndef copy\(.*?(?=\ndef )", "\n", text, flags=re.S)
    assert "copy: in the module, missing from the stub" in generator.differences(_core, dropped)


# ---- docs/api.md ------------------------------------------------------------------------------

def test_api_doc_lists_names_once():
    everything = IMPLEMENTED + PLANNED
    assert IMPLEMENTED, "docs/api.md lists no implemented name"
    duplicates = sorted({n for n in everything if everything.count(n) > 1})
    assert not duplicates, f"listed more than once in docs/api.md: {duplicates}"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_public_name_is_listed(namespace):
    module = importlib.import_module(namespace)
    public = [f"{namespace}.{n}" for n in module.__all__]
    missing = [n for n in public if n not in IMPLEMENTED and n not in PLANNED]
    assert not missing, f"public but not in docs/api.md: {missing}"


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_listed_name_exists_and_has_a_docstring(name):
    try:
        obj = _resolve(name)
    except (AttributeError, ImportError):
        pytest.fail(f"{name} is listed in docs/api.md but does not exist (list it under Planned)")
    doc = getattr(obj, "__doc__", None)
    assert isinstance(doc, str) and doc.strip(), f"{name} has no docstring"
    if callable(obj) and not (isinstance(obj, type) and issubclass(obj, BaseException)):
        # What a type checker and an editor read: the package is typed inline (py.typed), so
        # every public callable needs a signature they can see.
        inspect.signature(obj)
    namespace, _, short = name.rpartition(".")
    if namespace in NAMESPACES:
        assert short in importlib.import_module(namespace).__all__, f"{name} is listed but not in {namespace}.__all__"


_SOURCES = _test_sources()


@pytest.mark.parametrize("name", IMPLEMENTED)
def test_listed_name_is_exercised_by_a_test(name):
    short = name.rpartition(".")[2]
    assert _exercised_in(short, _SOURCES), f"no test file calls {name}"


def test_planned_names_are_listed_with_a_family():
    rows = [line for line in API_DOC.read_text().split(PLANNED_HEADING, 1)[1].splitlines() if _ROW.match(line)]
    assert len(rows) == len(PLANNED)
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert len(cells) == 3 and cells[1] and cells[2], f"a planned row needs name | family | description: {row}"


def test_exercised_check_ignores_torch_and_numpy_calls():
    sources = {"a.py": "torch.narrow(x, 0, 1, 2)\nnp.concat([a])\n", "b.py": "m.narrow(x, 0, 1, 2)\n"}
    assert _exercised_in("narrow", sources) == ["b.py"]
    assert _exercised_in("concat", sources) == []


def test_readme_quickstart_runs():
    # The README's first python block is what a new user pastes first: it must work as written.
    text = (ROOT / "README.md").read_text()
    start = text.index("```python\n") + len("```python\n")
    code = text[start:text.index("```", start)]
    namespace = {}
    threads = tops.get_num_threads()
    try:
        exec(compile(code, "README.md quickstart", "exec"), namespace)
    finally:
        tops.set_num_threads(threads)
    assert namespace["logits"].shape == (8, 10)
