import json

import pytest

from metastress.data.prepare import CorruptInputError
from metastress.data.splits import make_split, read_split, split_images, write_split


def test_paper_split_sizes_and_disjoint(paper_split):
    parts = [set(paper_split[p]) for p in ("train", "validation", "test")]
    assert [len(p) for p in parts] == [980, 220, 423]
    assert len(set.union(*parts)) == 1623


def test_same_seed_same_bytes_other_seed_other_split(processed, tmp_path):
    write_split(make_split(processed, "paper", 7), tmp_path / "a.json")
    write_split(make_split(processed, "paper", 7), tmp_path / "b.json")
    write_split(make_split(processed, "paper", 8), tmp_path / "c.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (
        json.loads((tmp_path / "a.json").read_text())["test"]
        != json.loads((tmp_path / "c.json").read_text())["test"]
    )


def test_split_ignores_the_order_characters_arrive_in(processed):
    reordered = {k: v[::-1] for k, v in processed.items()}
    assert make_split(reordered, "paper", 3) == make_split(processed, "paper", 3)


def test_lake_split(processed):
    split = make_split(processed, "lake", 0, validation_fraction=0.1)
    background = set(processed["characters"][processed["background"]].tolist())
    assert (len(split["train"]), len(split["validation"]), len(split["test"])) == (868, 96, 659)
    assert set(split["train"]) | set(split["validation"]) == background
    assert not background & set(split["test"])


def test_overlapping_split_file_is_refused(paper_split, tmp_path):
    bad = dict(paper_split, test=paper_split["test"] + paper_split["train"][:1])
    write_split(bad, tmp_path / "bad.json")
    with pytest.raises(CorruptInputError, match="in both 'train' and 'test'.*regenerate"):
        read_split(tmp_path / "bad.json")


def test_split_images_selects_named_characters(processed, paper_split):
    images = split_images(processed, paper_split, "validation")
    assert tuple(images.shape) == (220, 20, 28, 28)
    first = processed["characters"].tolist().index(paper_split["validation"][0])
    assert (images[0].numpy() == processed["images"][first]).all()
