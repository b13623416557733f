import hashlib

import pytest

from metastress.data.download import ARCHIVES, MIRROR_ENV, ChecksumError, fetch_archives


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_mirror_archives_are_verified_copies(mirror, tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    paths = fetch_archives(tmp_path / "raw", mirror=str(mirror))
    assert [p.name for p in paths] == list(ARCHIVES)
    for path in paths:
        assert path.read_bytes() == (mirror / path.name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == sorted(ARCHIVES)


def test_environment_variable_names_the_mirror(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    paths = fetch_archives(tmp_path / "raw", source="https://unreachable.invalid", mirror=None)
    assert all(p.is_file() for p in paths)


def test_tampered_archive_fails_and_leaves_no_partial_file(mirror_copy, tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    archive = mirror_copy / "images_evaluation.zip"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    dest = tmp_path / "raw"
    with pytest.raises(ChecksumError, match="images_evaluation.zip: MD5 .* does not match"):
        fetch_archives(dest, mirror=str(mirror_copy))
    # the background archive, verified before the failure, stays; nothing else is there
    assert [p.name for p in dest.iterdir()] == ["images_background.zip"]
    assert md5(dest / "images_background.zip") == md5(mirror_copy / "images_background.zip")


def test_wrong_checksum_in_list_fails(mirror_copy, tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    sums = mirror_copy / "MD5SUMS"
    sums.write_text(sums.read_text().replace(md5(mirror_copy / "images_background.zip"), "0" * 32))
    dest = tmp_path / "raw"
    with pytest.raises(ChecksumError, match="images_background.zip.*expected 0{32}"):
        fetch_archives(dest, mirror=str(mirror_copy))
    assert list(dest.iterdir()) == []


def test_official_checksums_reject_other_bytes(mirror, tmp_path, monkeypatch):
    """The URL path checks the official MD5s (the mirror's re-encoded bytes differ from them)."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    dest = tmp_path / "raw"
    with pytest.raises(ChecksumError, match="68d2efa1b9178cc56df9314c21c6e718"):
        fetch_archives(dest, source=mirror.as_uri())
    assert list(dest.iterdir()) == []


def test_mirror_without_checksum_list_is_refused(mirror_copy, tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    (mirror_copy / "MD5SUMS").unlink()
    with pytest.raises(FileNotFoundError, match="MD5SUMS"):
        fetch_archives(tmp_path / "raw", mirror=str(mirror_copy))
