"""Modals, built with slack_sdk.models."""

from __future__ import annotations


def submitted(view: object, block: str) -> str | None:
    """What was typed into a block's plain-text input, or None.

    A submission is the submitter's to forge: any level of it may be missing or of another type.
    NUL is dropped, since no store column can hold it.
    """
    node = view
    for key in ("state", "values", block, "value", "value"):
        node = node.get(key) if isinstance(node, dict) else None
    return node.replace("\x00", "") if isinstance(node, str) else None
