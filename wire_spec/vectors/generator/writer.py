"""Writes case folders (meta.json, .bin and .json files) deterministically."""

from __future__ import annotations

import json
from pathlib import Path


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class CaseWriter:
    """Collects the cases of one run and writes them under `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.count = 0

    def case(self, area: str, handler: str, valid: bool, name: str, meta: dict, files: dict) -> Path:
        if "description" not in meta:
            raise ValueError(f"{area}/{handler}/{name}: meta needs a description")
        folder = self.root / area / handler / ("valid" if valid else "invalid") / name
        if folder.exists():
            raise ValueError(f"duplicate case {folder}")
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(dumps(meta), encoding="utf-8")
        for fname, content in files.items():
            path = folder / fname
            if isinstance(content, bytes | bytearray):
                path.write_bytes(bytes(content))
            elif isinstance(content, str):
                path.write_text(content, encoding="utf-8")
            else:
                path.write_text(dumps(content), encoding="utf-8")
        self.count += 1
        return folder
