"""Turn the two Omniglot archives into one array file of 28x28 uint8 images.

Output (`.npz`): `images` uint8 (1623, 20, 28, 28); `characters` ("Alphabet/characterNN",
sorted); `alphabets`; `background` (True for the 964 characters of images_background).
Images are read straight from the zip archives, which avoids unpacking 32,460 small files.

The PNGs are mode "1" (bilevel): PIL resizes such an image with NEAREST whatever filter is
asked for, so each is converted to "L" before the LANCZOS resize, which keeps grey levels.
"""

import io
import zipfile
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from metastress.atomic import write_with

IMAGE_SIZE = 28
IMAGES_PER_CHARACTER = 20
ARCHIVE_FLAGS = {"images_background.zip": True, "images_evaluation.zip": False}


class CorruptInputError(RuntimeError):
    """An input file exists but cannot be used; the message says how to regenerate it."""


def resize(png: bytes, size: int = IMAGE_SIZE) -> np.ndarray:
    """Decode one Omniglot PNG and LANCZOS-resize it to (size, size) uint8."""
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("L").resize((size, size), Image.LANCZOS), dtype=np.uint8)


def list_characters(archive: Path) -> dict[str, list[str]]:
    """Map "Alphabet/characterNN" to its sorted PNG members in the archive."""
    members: dict[str, list[str]] = {}
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            parts = PurePosixPath(name).parts
            if len(parts) == 4 and parts[3].endswith(".png"):
                members.setdefault(f"{parts[1]}/{parts[2]}", []).append(name)
    for character, pngs in members.items():
        if len(pngs) != IMAGES_PER_CHARACTER:
            raise CorruptInputError(
                f"{archive}: {character} has {len(pngs)} images, expected {IMAGES_PER_CHARACTER}; "
                "delete the archive and run `metastress data download` again"
            )
        pngs.sort()
    return members


_open_archives: dict[str, zipfile.ZipFile] = {}  # per worker: parsing a directory costs ~0.1 s


def _resize_members(job: tuple[str, list[str], int]) -> np.ndarray:
    archive, names, size = job
    images = []
    for name in names:
        try:
            if archive not in _open_archives:
                _open_archives[archive] = zipfile.ZipFile(archive)
            images.append(resize(_open_archives[archive].read(name), size))
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
            # PIL's UnidentifiedImageError is an OSError; a bad CRC is a BadZipFile
            raise CorruptInputError(
                f"{archive}: member {name} is damaged ({type(e).__name__}: {e}); delete the "
                "archive and run `metastress data download` (or `snakemake data/raw`) again"
            ) from None  # the message is all that crosses back from the worker process
    return np.stack(images)


def prepare(raw_dir: str | Path, out: str | Path, size: int = IMAGE_SIZE, workers: int = 2) -> None:
    """Build the processed array file `out` from the archives in `raw_dir`."""
    raw_dir = Path(raw_dir)
    characters, flags, jobs = [], [], []
    for archive_name, is_background in ARCHIVE_FLAGS.items():
        archive = raw_dir / archive_name
        try:
            members = list_characters(archive)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise CorruptInputError(
                f"{archive}: cannot read the archive ({e}); delete it and run "
                "`metastress data download` (or `snakemake data/raw`) again"
            ) from e
        for character in sorted(members):
            characters.append(character)
            flags.append(is_background)
            jobs.append((str(archive), members[character], size))
    order = np.argsort(characters, kind="stable")  # one global order by identity
    with ProcessPoolExecutor(max_workers=workers) as pool:
        stacks = list(pool.map(_resize_members, jobs, chunksize=64))
    images = np.stack(stacks)[order]  # (1623, 20, size, size)
    names = np.array(characters)[order]
    arrays = {
        "images": images,
        "characters": names,
        "alphabets": np.array([c.split("/")[0] for c in names]),
        "background": np.array(flags)[order],
    }
    write_with(out, lambda f: np.savez(f, **arrays))


def load_processed(path: str | Path) -> dict[str, np.ndarray]:
    """Read and sanity-check a processed array file."""
    path = Path(path)
    fix = "delete it and run `metastress data prepare` (or `snakemake` again) to rebuild it"
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ("images", "characters", "alphabets", "background")}
    except FileNotFoundError as e:
        raise CorruptInputError(f"{path} does not exist; run `metastress data prepare`") from e
    except Exception as e:  # numpy and zipfile raise many types; a bad CRC is a BadZipFile
        raise CorruptInputError(f"{path} is truncated or corrupt ({e}); {fix}") from e
    images = arrays["images"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] != IMAGES_PER_CHARACTER:
        raise CorruptInputError(
            f"{path}: images are {images.dtype} {images.shape}, expected uint8 (C, 20, H, W); {fix}"
        )
    for key in ("characters", "alphabets", "background"):
        if len(arrays[key]) != len(images):
            raise CorruptInputError(
                f"{path}: {len(arrays[key])} {key} for {len(images)} characters; {fix}"
            )
    if len(set(arrays["characters"].tolist())) != len(images):
        raise CorruptInputError(f"{path}: character names repeat; {fix}")
    return arrays
