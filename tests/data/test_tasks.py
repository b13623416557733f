import pytest
import torch

from metastress.data.tasks import TaskSampler, rotate_quarter_turns


def coded_images(n_characters=30):
    """Character c's images hold the value c everywhere except one marked corner pixel."""
    images = torch.arange(n_characters, dtype=torch.uint8)[:, None, None, None].repeat(
        1, 20, 28, 28
    )
    images[:, :, 0, 0] = 255  # the top-left corner reveals the rotation
    return images


def sample(sampler, batch=4, seed=0):
    return sampler.sample(batch, torch.Generator().manual_seed(seed))


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
    codes = (episode.support_x[:, :, 0, 14, 14] * 255).round().long()  # (B, N*K)
    assert codes.min() >= 10 and codes.max() <= 24
    for b in range(8):
        support_code = dict(zip(episode.support_y[b].tolist(), codes[b].tolist(), strict=True))
        query_codes = (episode.query_x[b, :, 0, 14, 14] * 255).round().long().tolist()
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
    )[:, :, 0]  # (B, N*K, 4): which corner holds the mark
    position = corners.argmax(-1)
    assert set(position.unique().tolist()) == {0, 1, 2, 3}
    for b in range(16):
        for label in range(5):
            assert len(position[b][episode.support_y[b] == label].unique()) == 1


def test_rotation_off_keeps_images_upright():
    episode = sample(TaskSampler(coded_images(), 5, 1, 1, rotate=False))
    assert (episode.support_x[..., 0, 0, 0] == 1.0).all()


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
