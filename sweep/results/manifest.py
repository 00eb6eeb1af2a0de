"""A sweep folder's manifest (`_manifest.json`): the config and its identity, the
package versions, the git commit and the shard list. Written when a sweep opens its
folder; read by everything that opens a sweep folder."""

import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path

from ..config import Config, ConfigError
from ..config.shards import Shard
from .layout import MANIFEST, write_atomic


def read_manifest(root: str | Path) -> dict:
    """A sweep folder's manifest; a damaged one is a one-line error saying what to do."""
    path = Path(root) / MANIFEST
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise ConfigError(
            "SWEEP", None, None,
            detail=f"{path} is damaged: restore it, or run the sweep again with --fresh",
        ) from None  # fmt: skip


def write_manifest(root: str | Path, config: Config, shards: list[Shard]) -> None:
    """Write the manifest of a sweep folder (atomically)."""
    manifest = {
        "sweep": config.name,
        "identity": json.loads(config.identity()),
        "config": config.to_raw(),
        "versions": versions(),
        "git_commit": git_commit(),
        "shards": [
            {
                "file": f"{s.name}.parquet",
                "k": s.cell.k,
                "n": s.cell.n,
                "d": s.cell.d,
                "start": s.start,
                "stop": s.stop,
            }
            for s in shards
        ],  # fmt: skip
    }
    write_atomic(
        root,
        Path(root) / MANIFEST,
        lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=1)),
    )


def identity_difference(root: str | Path, config: Config) -> tuple | None:
    """The first field (dotted name, stored value, this config's) where the sweep in
    `root` and `config` differ in what decides results; None if they agree."""
    stored = read_manifest(root).get("identity", {})
    return _first_difference(_with_defaults(stored), json.loads(config.identity()))


def shard_rows(root: str | Path) -> dict[str, int]:
    """Shard name -> its number of runs, from a sweep folder's manifest."""
    manifest = read_manifest(root)
    return {s["file"].removesuffix(".parquet"): s["stop"] - s["start"] for s in manifest["shards"]}


def versions() -> dict[str, str]:
    """Versions of the packages that decide the numbers."""
    found = {"python": platform.python_version()}
    for name in ("sweep", "jax", "jaxlib", "optax", "numpy", "pyarrow"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def git_commit() -> str:
    """The commit of the source tree sweep runs from ("unknown" outside a checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _flatten(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def _first_difference(old, new):
    old_flat, new_flat = _flatten(old), _flatten(new)
    for key in sorted(set(old_flat) | set(new_flat)):
        if old_flat.get(key) != new_flat.get(key):
            return key, old_flat.get(key), new_flat.get(key)
    return None


def _with_defaults(stored: dict) -> dict:
    """A stored identity completed with the schema's defaults: a field added to the schema
    since a folder was written takes its default there, which changes no result."""

    def merge(base, over):
        if not (isinstance(base, dict) and isinstance(over, dict)):
            return over
        return {**base, **{key: merge(base.get(key), value) for key, value in over.items()}}

    return merge(json.loads(Config().identity()), stored)
