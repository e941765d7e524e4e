"""The two ways in: :func:`load_config` (a file) and :func:`parse_config` (its text)."""

from __future__ import annotations

import os
from pathlib import Path

from mwjobs.config.model import RunnerConfig
from mwjobs.config.reading import decode, read_text, strip_comments
from mwjobs.config.validate import Builder

__all__ = ["load_config", "parse_config"]


def load_config(path: str | os.PathLike[str]) -> RunnerConfig:
    """Read and validate a config file. Relative ``python`` dispatcher paths are resolved
    against the file's directory."""
    source = os.fspath(path)
    text = read_text(source)
    return parse_config(text, source, base_dir=Path(source).resolve().parent)


def parse_config(
    text: str, source: str = "<string>", *, base_dir: Path | None = None
) -> RunnerConfig:
    """Validate config text. ``source`` names it in error messages; ``base_dir`` (if given)
    anchors relative ``python`` dispatcher paths."""
    doc = decode(strip_comments(text.removeprefix("\ufeff"), source), source)
    return Builder(source, base_dir).build(doc)
