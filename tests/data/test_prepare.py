import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from metastress.data.prepare import CorruptInputError, load_processed


def test_shape_dtype_and_metadata(processed):
    images = processed["images"]
    assert images.shape == (1623, 20, 28, 28)
    assert images.dtype == np.uint8
    assert processed["background"].sum() == 964
    names = processed["characters"].tolist()
    assert names == sorted(names) and len(set(names)) == 1623
    assert all(
        name.startswith(alpha + "/")
        for name, alpha in zip(names, processed["alphabets"], strict=True)
    )


def test_grey_levels_from_lanczos_not_binary(processed):
    images = processed["images"]
    assert images.min() == 0 and images.max() == 255
    assert len(np.unique(images[:50])) > 100  # LANCZOS of a bilevel image gives many grey levels


def test_one_image_equals_pil_lanczos_of_greyscale_original(processed, raw_dir):
    character = processed["characters"].tolist().index("Greek/character05")
    with zipfile.ZipFile(raw_dir / "images_background.zip") as zf:
        members = sorted(
            n
            for n in zf.namelist()
            if n.startswith("images_background/Greek/character05/") and n.endswith(".png")
        )
        original = Image.open(io.BytesIO(zf.read(members[3])))
        assert original.mode == "1" and original.size == (105, 105)
        expected = np.asarray(original.convert("L").resize((28, 28), Image.LANCZOS))
    np.testing.assert_array_equal(processed["images"][character, 3], expected)


def test_truncated_array_file_is_a_clear_error(processed_path, tmp_path):
    truncated = tmp_path / "omniglot28.npz"
    truncated.write_bytes(processed_path.read_bytes()[:100_000])
    with pytest.raises(CorruptInputError, match="truncated or corrupt.*metastress data prepare"):
        load_processed(truncated)
