"""Where the workflow's files live: every per-seed file names its seed, and the layout parses
back."""

import pytest

from metastress import paths


def test_every_final_model_file_names_its_seed():
    assert paths.model_file("maml", "20w1s", 2) == "models/maml/20w1s/seed2/model.pt"
    assert paths.evaluation_file("maml", "40w5s", "40w1s", 0) == (
        "results/eval/maml/40w5s/seed0/40w1s.json"
    )
    assert paths.steps_file("taml", "40w1s", "40w5s", 8, 1) == (
        "results/ablation/steps/taml/40w1s/seed1/40w5s/steps8.json"
    )
    assert paths.swap_file("20w5s", "adam", "metalstm", 0) == (
        "results/ablation/swap/20w5s/seed0/adam_adapts_metalstm.json"
    )
    assert paths.swap_choice_file("20w5s", "adam", "metalstm", 0) == (
        "results/ablation/swap/20w5s/seed0/adam_adapts_metalstm.choice.json"
    )
    assert paths.trajectory_file("metalstm", "20w1s") == "results/fig1/metalstm/20w1s/trajectory.pt"


def test_the_rules_wildcards_come_through():
    assert paths.run_dir("{algo}", "{setting}", "{seed}") == "models/{algo}/{setting}/seed{seed}"


def test_layouts_parse_back_with_any_prefix():
    assert paths.parse_run_dir("/tmp/x/" + paths.run_dir("metalstm_pp", "200w1s", 12)) == {
        "algo": "metalstm_pp",
        "setting": "200w1s",
        "seed": 12,
    }
    assert paths.parse_evaluation_file(paths.evaluation_file("maml", "40w5s", "40w1s", 3)) == {
        "algo": "maml",
        "train": "40w5s",
        "seed": 3,
        "test": "40w1s",
    }
    with pytest.raises(ValueError, match="is not laid out as results/eval/"):
        paths.parse_evaluation_file("results/eval/maml/40w5s/40w1s.json")  # no seed folder
