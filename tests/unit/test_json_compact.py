"""The C compactor of JSON columns (``sinks/json_native.py``) writes exactly what
``render.json_document`` writes, for every document: its own output where the document is
Python's compact text but for whitespace, ``json_document``'s (its error too) elsewhere."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from egress.sinks import json_native
from egress.sinks.render import json_document

# Strings with every escape PostgreSQL's jsonb and Python write alike, and some they do not.
STRINGS = ["", "a", "é 🎉", "tab\there", 'q"uote', "back\\slash", "\x01\x1f", "\x7f", "\u2028"]
ODD_TEXTS = [
    '"\\/"',
    '"\\u0041"',
    '"\\u001F"',
    *(f'"\\u00{code:02x}"' for code in (8, 9, 10, 12, 13)),  # Python: \b \t \n \f \r
    '"\\ud83d\\ude00"',
    '{"a": 1, "a": 2}',
    '{"\\u0061": 1, "a": 2}',
    "-0",
    "[-0, 1]",
    "NaN",
    "[Infinity]",
    "01",
    "[1,]",
    '{"a" 1}',
    "",
    "   ",
    "tru",
    '"unterminated',
    '"raw\ncontrol"',
    "[" * 300 + "]" * 300,
    "{" + ", ".join(f'"k{i}": {i}' for i in range(100)) + "}",
    "1 2",
    "1.5e",
    "-",
    ".5",
]


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([True, False, None])
    if kind == 1:
        return rng.randrange(-(10**30), 10**30)
    if kind == 2:
        return rng.uniform(-1e6, 1e6) * 10 ** rng.randrange(-20, 20)
    if kind in (3, 4, 5):
        return "".join(rng.choice(STRINGS) for _ in range(rng.randrange(3)))
    if kind in (6, 7):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}{rng.choice(STRINGS)}": _random_value(rng, depth + 1) for i in range(4)}


def _texts(rng: random.Random) -> list[str]:
    """Random documents as PostgreSQL (", " and ": ") or compactly or loosely spaced."""
    texts = []
    for _ in range(3000):
        value = _random_value(rng)
        style = rng.randrange(3)
        if style == 0:
            texts.append(json.dumps(value, ensure_ascii=False))
        elif style == 1:
            texts.append(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
        else:
            texts.append(" \n" + json.dumps(value, ensure_ascii=False, indent=2) + "\t ")
    return texts


def _expected(text: str | None) -> str | type[ValueError] | None:
    if text is None:
        return None
    try:
        return json_document(text, "j")
    except ValueError:
        return ValueError


@pytest.mark.skipif(json_native._COMPACT is None, reason="the C part was not built")
def test_the_c_compactor_writes_what_json_document_writes() -> None:
    rng = random.Random(19)
    texts: list[str | None] = [*_texts(rng), *ODD_TEXTS, None]
    valid = [t for t in texts if _expected(t) is not ValueError]
    col = pa.array(valid, pa.string())
    assert json_native.json_documents(col, "j").to_pylist() == [_expected(t) for t in valid]
    # A slice (offsets and validity bits from within the buffers) and nulls among the values.
    assert json_native.json_documents(col.slice(7, 500), "j").to_pylist() == [
        _expected(t) for t in valid[7:507]
    ]
    for text in texts:
        if _expected(text) is ValueError:
            with pytest.raises(ValueError, match="column 'j' holds"):
                json_native.json_documents(pa.array(["[]", text, None]), "j")


@pytest.mark.skipif(json_native._COMPACT is None, reason="the C part was not built")
def test_most_documents_never_reach_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's jsonb text is compacted in C: Python renders none of it."""
    called: list[str] = []
    monkeypatch.setattr(json_native, "json_document", lambda t, c: called.append(t) or t)
    jsonb = ['{"a": [1, 2.50, "x\\ty"], "b": {"c": null, "d": "é"}}', "[]", "12.5", '"\\u0001"']
    got = json_native.json_documents(pa.array([*jsonb, None]), "j").to_pylist()
    assert got == ['{"a":[1,2.50,"x\\ty"],"b":{"c":null,"d":"é"}}', "[]", "12.5", '"\\u0001"', None]
    assert called == []


def test_without_the_c_part_every_document_is_rendered_in_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(json_native, "_COMPACT", None)
    texts = ['{"a": [1, 2.50]}', '{"a": 1, "a": 2}', None]
    assert json_native.json_documents(pa.array(texts), "j").to_pylist() == [
        '{"a":[1,2.50]}',
        '{"a":1,"a":2}',
        None,
    ]
