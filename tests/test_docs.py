"""The docs are current: .env.example and docs/configuration.md list every setting (regenerate with
`make config-docs`)."""

from __future__ import annotations

from breakwater.settings import (
    CONFIG_DOC,
    ROOT,
    SETTINGS,
    TABLE_BEGIN,
    TABLE_END,
    env_example,
    env_name,
    markdown_table,
)


def between(text: str, begin: str, end: str) -> str:
    assert begin in text and end in text, f"no {begin} ... {end}"
    return text[text.index(begin) + len(begin) : text.index(end)].strip()


def test_env_example_is_current():
    assert (ROOT / ".env.example").read_text() == env_example(), "run `make config-docs`"


def test_the_configuration_doc_holds_the_generated_table():
    doc = CONFIG_DOC.read_text()
    assert between(doc, TABLE_BEGIN, TABLE_END) == markdown_table(), "run `make config-docs`"
    for s in SETTINGS:
        assert env_name(s.name) in doc
