from __future__ import annotations

from postwarden.permissions_doc import DOC_PATH, render


def test_docs_permissions_md_matches_policy() -> None:
    assert DOC_PATH.read_text() == render(), "docs/permissions.md is stale: run `python -m postwarden.permissions_doc`"
