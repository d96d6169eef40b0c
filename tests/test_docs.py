"""The README and .env.example list every setting (regenerate with `make config-docs`)."""

from __future__ import annotations

from breakwater.settings import ROOT, SETTINGS, env_example, env_name, markdown_table


def test_env_example_is_current():
    assert (ROOT / ".env.example").read_text() == env_example(), "run `make config-docs`"


def test_readme_has_the_configuration_table_and_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "run `make config-docs`"
    for s in SETTINGS:
        assert env_name(s.name) in readme
    head = readme[:1500]
    assert "make run" in head and "make test" in head
