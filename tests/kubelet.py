"""A ConfigMap volume laid out exactly as kubelet writes it, for flag reload tests and benchmarks.

kubelet's AtomicWriter: the data lives in a timestamped directory `..2026_11_25_15_04_05.123456789`,
`..data` is a symlink to it, each key is a symlink `name -> ..data/name`; an update writes a
new timestamped directory, points `..data_tmp` at it, renames `..data_tmp` over `..data`
(atomic) and removes the old directory.
"""
import datetime as dt
import os
import shutil
from pathlib import Path


class ConfigMapVolume:
    def __init__(self, root: Path, files: dict):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._serial = 0
        self.update(files)
        for name in files:
            os.symlink(f"..data/{name}", self.root / name)

    def _new_dir(self, files):
        self._serial += 1
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y_%m_%d_%H_%M_%S")
        directory = self.root / f"..{stamp}.{self._serial:09d}"
        directory.mkdir()
        for name, content in files.items():
            (directory / name).write_text(content)
        return directory

    def update(self, files: dict):
        """Swap in new contents the way kubelet does."""
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        new = self._new_dir(files)
        tmp = self.root / "..data_tmp"
        os.symlink(new.name, tmp)
        os.rename(tmp, data)
        if old:
            shutil.rmtree(self.root / old)

    def remove(self, name):
        """The key disappears from the ConfigMap: kubelet drops it from the new data dir."""
        current = self.root / os.readlink(self.root / "..data")
        files = {p.name: p.read_text() for p in current.iterdir() if p.name != name}
        self.update(files)
        (self.root / name).unlink()
