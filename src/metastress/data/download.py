"""Fetch the two Omniglot archives from the official URL or a local mirror, verified.

Each archive is fetched into a temporary folder inside the destination, checked against its
MD5, and only then renamed into place: a corrupt or mismatching archive raises and leaves no
partial file behind. Archives already present with the right checksum are kept.
"""

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from torchvision.datasets.utils import calculate_md5, download_url

ARCHIVES = ("images_background.zip", "images_evaluation.zip")
OFFICIAL_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
OFFICIAL_MD5 = {  # the values torchvision's Omniglot dataset checks
    "images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811",
}
MIRROR_ENV = "OMNIGLOT_MIRROR"


class ChecksumError(RuntimeError):
    """An archive's bytes are not the ones its checksum list promises."""


def read_md5sums(path: Path) -> dict[str, str]:
    """Parse an `md5sum`-style file: '<hex>  <name>' per line."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: a mirror folder must hold the archives and their MD5SUMS"
        )
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*").strip()] = digest.lower()
    return sums


def resolve_mirror(mirror: str | None) -> Path | None:
    """The mirror folder: an explicit `mirror` (--mirror), else OMNIGLOT_MIRROR."""
    chosen = mirror or os.environ.get(MIRROR_ENV)
    return Path(chosen).expanduser().resolve() if chosen else None


def fetch_archives(
    dest: str | Path, source: str = OFFICIAL_URL, mirror: str | None = None
) -> list[Path]:
    """Place verified copies of both archives in `dest`.

    Args:
        dest: folder for the archives (e.g. data/raw).
        source: base URL of the official archives.
        mirror: folder with the same archives and an MD5SUMS file; used instead of `source`.

    Returns:
        The paths of the two archives.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    mirror_dir = resolve_mirror(mirror)
    expected = read_md5sums(mirror_dir / "MD5SUMS") if mirror_dir else OFFICIAL_MD5
    origin = str(mirror_dir) if mirror_dir else source
    paths = []
    for name in ARCHIVES:
        if name not in expected:
            raise ChecksumError(f"{origin}: no checksum listed for {name}; add it to MD5SUMS")
        target = dest / name
        if not (target.is_file() and calculate_md5(str(target)) == expected[name]):
            _fetch_one(name, origin, mirror_dir, expected[name], target)
        paths.append(target)
    return paths


def _local_folder(url: str) -> Path | None:
    """A file:// source is a local copy of the official archives (checked like the URL)."""
    parsed = urlparse(url)
    return Path(url2pathname(parsed.path)) if parsed.scheme == "file" else None


def _fetch_one(name: str, origin: str, mirror_dir: Path | None, md5: str, target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        staged = Path(tmp) / name
        local = mirror_dir or _local_folder(origin)
        if local:
            if not (local / name).is_file():
                raise FileNotFoundError(f"{local} has no {name}")
            shutil.copyfile(local / name, staged)
        else:
            download_url(f"{origin}/{name}", tmp, filename=name)
        actual = calculate_md5(str(staged))
        if actual != md5:
            raise ChecksumError(
                f"{origin}/{name}: MD5 {actual} does not match the expected {md5}. The archive "
                "is corrupt or not the Omniglot original; fetch it again, or point "
                f"{MIRROR_ENV} / data.mirror at a folder whose MD5SUMS lists its checksum."
            )
        os.replace(staged, target)
