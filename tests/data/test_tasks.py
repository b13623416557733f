import pytest
import torch

from metastress.data.tasks import TaskSampler, rotate_quarter_turns, to_ink


def coded_images(n_characters=30):
    """Character c's images hold the value c everywhere except one marked corner pixel."""
    images = torch.arange(n_characters, dtype=torch.uint8)[:, None, None, None].repeat(
        1, 20, 28, 28
    )
    images[:, :, 0, 0] = 255  # the top-left corner reveals the rotation
    return images


def sample(sampler, batch=4, seed=0):
    return sampler.sample(batch, torch.Generator().manual_seed(seed))


def stored_values(x):
    """The uint8 values an episode's images were drawn from (the inverse of the ink map)."""
    return ((1 - x) * 255).round().long()


def test_shapes_and_label_counts():
    N, K, Q, B = 5, 3, 2, 4
    episode = sample(TaskSampler(coded_images(), N, K, Q), batch=B)
    assert episode.support_x.shape == (B, N * K, 1, 28, 28)
    assert episode.query_x.shape == (B, N * Q, 1, 28, 28)
    assert episode.support_x.dtype == torch.float32
    for b in range(B):
        assert torch.bincount(episode.support_y[b], minlength=N).tolist() == [K] * N
        assert torch.bincount(episode.query_y[b], minlength=N).tolist() == [Q] * N


def test_classes_come_from_the_split_and_labels_match_classes():
    images = coded_images(40)[10:25]  # a "split" of characters 10..24
    episode = sample(TaskSampler(images, n_way=6, k_shot=1, n_query=3), batch=8)
    codes = stored_values(episode.support_x[:, :, 0, 14, 14])  # (B, N*K)
    assert codes.min() >= 10 and codes.max() <= 24
    for b in range(8):
        support_code = dict(zip(episode.support_y[b].tolist(), codes[b].tolist(), strict=True))
        query_codes = stored_values(episode.query_x[b, :, 0, 14, 14]).tolist()
        assert [support_code[y] for y in episode.query_y[b].tolist()] == query_codes
        assert len(set(support_code.values())) == 6  # distinct characters in a task


def test_each_class_gets_one_rotation_and_all_rotations_occur():
    episode = sample(TaskSampler(coded_images(), n_way=5, k_shot=2, n_query=2), batch=16)
    corners = torch.stack(
        [
            episode.support_x[..., 0, 0],
            episode.support_x[..., 0, -1],
            episode.support_x[..., -1, 0],
            episode.support_x[..., -1, -1],
        ],
        dim=-1,
    )[:, :, 0]  # (B, N*K, 4): which corner holds the mark (stored 255, ink 0)
    position = corners.argmin(-1)
    assert set(position.unique().tolist()) == {0, 1, 2, 3}
    for b in range(16):
        for label in range(5):
            assert len(position[b][episode.support_y[b] == label].unique()) == 1


def test_rotation_off_keeps_images_upright():
    episode = sample(TaskSampler(coded_images(), 5, 1, 1, rotate=False))
    assert (episode.support_x[..., 0, 0, 0] == 0.0).all()


def test_rotate_quarter_turns_matches_rot90():
    x = torch.arange(2 * 3 * 16).reshape(2, 3, 4, 4)
    turns = torch.tensor([[0, 1, 2], [3, 2, 1]])
    out = rotate_quarter_turns(x, turns)
    for b in range(2):
        for n in range(3):
            assert torch.equal(out[b, n], torch.rot90(x[b, n], int(turns[b, n]), dims=(-2, -1)))


def test_same_seed_same_episode_other_seed_other_episode():
    sampler = TaskSampler(coded_images(), 5, 1, 1)
    a, b, c = sample(sampler, seed=3), sample(sampler, seed=3), sample(sampler, seed=4)
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)
    assert not torch.equal(a.support_x, c.support_x)


def test_fixed_tasks_do_not_depend_on_grouping():
    sampler = TaskSampler(coded_images(), 5, 1, 2)
    grouped = sampler.fixed_tasks(6, seed=11, batch=4)
    single = sampler.fixed_tasks(6, seed=11, batch=1)
    assert [len(e) for e in grouped] == [4, 2]
    assert torch.equal(
        torch.cat([e.query_x for e in grouped]), torch.cat([e.query_x for e in single])
    )


def test_impossible_settings_are_clear_errors():
    images = coded_images(30)
    with pytest.raises(
        ValueError, match="500-way tasks need 500 classes but the split has only 30"
    ):
        TaskSampler(images, n_way=500, k_shot=1, n_query=1)
    with pytest.raises(ValueError, match="k_shot \\+ n_query = 15 \\+ 6 exceeds the 20 images"):
        TaskSampler(images, n_way=5, k_shot=15, n_query=6)


def test_ink_map_sends_black_strokes_to_1_and_white_background_to_0():
    stored = torch.tensor([0, 51, 255], dtype=torch.uint8)
    assert to_ink(stored).tolist() == pytest.approx([1.0, 0.8, 0.0], abs=1e-7)
    assert to_ink(stored)[[0, 2]].tolist() == [1.0, 0.0]  # exact at the two ends


def test_real_omniglot_reaches_the_model_as_ink_on_zero_background(processed):
    """Every stored image, as the sampler hands it to the model: strokes near 1, background 0."""
    stored = torch.from_numpy(processed["images"])  # (1623, 20, 28, 28), black ink on white
    C = stored.shape[0]
    sampler = TaskSampler(stored, n_way=C, k_shot=10, n_query=10, rotate=False)
    episode = sample(sampler, batch=1)
    x = torch.cat([episode.support_x, episode.query_x], dim=1)[0, :, 0]  # (C*20, 28, 28)
    assert x.shape[0] == stored.shape[0] * stored.shape[1]  # every image, once

    # the darkest stored pixel (a stroke's core) is 1, the white background exactly 0
    assert (x.amax(dim=(1, 2)) == 1.0).float().mean() > 0.9
    assert (x.amin(dim=(1, 2)) == 0.0).all()
    # most of every image is background: 0, or a LANCZOS halo of at most 5/255 around strokes
    background = (x <= 5 / 255 + 1e-7).float().mean(dim=(1, 2))  # (C*20,)
    assert background.min() > 0.5
    # ink is where the stored image is dark: the sorted values are the stored ones inverted
    expected = to_ink(stored.flatten()).sort().values
    assert torch.equal(x.flatten().sort().values, expected)


@pytest.mark.parametrize(
    ("n_way", "k_shot", "n_query", "rotate"), [(5, 1, 1, True), (3, 2, 3, False)]
)
def test_sample_into_draws_the_episode_sample_draws_into_fixed_tensors(
    n_way, k_shot, n_query, rotate
):
    """The same tensors for the same generator state, the same random numbers consumed, and
    the buffers' addresses unchanged (what a captured CUDA graph reads)."""
    sampler = TaskSampler(coded_images(), n_way, k_shot, n_query, rotate)
    buffers = sampler.episode_buffers(4)
    fields = ("support_x", "support_y", "query_x", "query_y")
    addresses = [getattr(buffers, name).data_ptr() for name in fields]
    for seed in (0, 1):
        into, plain = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
        sampler.sample_into(buffers, into)
        expected = sampler.sample(4, plain)
        for name in fields:
            assert torch.equal(getattr(buffers, name), getattr(expected, name)), name
        assert torch.equal(into.get_state(), plain.get_state())
    assert [getattr(buffers, name).data_ptr() for name in fields] == addresses
    with pytest.raises(ValueError, match=r"make them with this sampler's episode_buffers\(4\)"):
        TaskSampler(coded_images(), n_way + 1, k_shot, n_query).sample_into(buffers, into)
