"""The files a `data.path` names: one file, a folder of them, or a glob; local or any fsspec URL."""

from __future__ import annotations

from sweeper.errors import SweeperInputError


def find_files(path: str, *, suffixes: tuple[str, ...], field: str, what: str, how: str) -> list[str]:
    """Sorted file URLs (local ones stay plain paths, so messages name the file). `what` names the files
    ("token shards"), `how` says how to make them; both go into the messages."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if any(ch in root for ch in "*?["):
        found = sorted(fs.glob(root))
    elif fs.isdir(root):
        found = sorted(p for p in fs.ls(root, detail=False) if str(p).endswith(suffixes) and fs.isfile(p))
    elif fs.exists(root):
        found = [root]
    else:
        raise SweeperInputError(
            field,
            path,
            f"no such file or folder; give {what}: one file, a folder of them, "
            "or a glob (local path or fsspec URL)",
        )
    if not found:
        raise SweeperInputError(
            field, path, f"no {what} there (files ending in {', '.join(suffixes)}); {how}"
        )
    local = "file" in protocols or "local" in protocols
    return [str(p) if local else fs.unstrip_protocol(str(p)) for p in found]
