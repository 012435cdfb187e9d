"""Census end to end: the models train on real rows and beat a trivial predictor; the command
fails kindly without data."""

import dataclasses

import pytest

from minimoe.cli import main
from minimoe.data.census import load_census
from minimoe.studies import census as census_study

from .helpers import real_test_file


@pytest.fixture(scope="module")
def small_census():
    path = real_test_file()
    if path is None:
        pytest.skip("census-income.test.gz not found in ../shared/data or $MINIMOE_DATA")
    data = load_census(group=1, data_home=path.parent, download=False)
    # A small sample keeps the test fast: 6,000 training and 3,000 validation rows.
    return dataclasses.replace(data, train=(data.train[0][:6000], data.train[1][:6000]),
                               validation=(data.validation[0][:3000], data.validation[1][:3000]))


@pytest.mark.parametrize("model", census_study.STUDY_MODELS)
def test_models_learn_both_census_tasks(small_census, model):
    settings = census_study.CensusSettings(epochs=4, batch_size=128)
    result = census_study.train_on_census(model, small_census, seed=0, settings=settings)
    # A trivial predictor scores AUC 0.5. Measured here (4 epochs of batch 128, seeds 0-2): Shared-
    # Bottom, OMoE, MMoE income 0.905-0.930, never married 0.988-0.992; CGC and PLE income 0.921-0.929,
    # never married 0.992-0.993. Asserted with margin:
    assert result.auc["income_50k"] > 0.85 and result.auc["never_married"] > 0.95, result
    assert 1 <= result.best_epoch <= 4


def test_census_command_without_data_says_where_to_put_it(tmp_path, capsys):
    assert main(["census", "--data-home", str(tmp_path), "--no-download", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "census-income.test" in err


@pytest.mark.parametrize("model", ["CGC", "PLE"])
def test_cgc_and_ple_have_mmoe_s_parameter_budget(model):
    """Beside the input layer, which every model shares, CGC and PLE are within 5% of MMoE's count."""
    import minimoe as mm
    settings = census_study.CensusSettings()
    sizes = census_study._mixture_sizes(model, 120, 2, settings)
    assert sizes["n_shared_experts"] == 4 and sizes["n_task_experts"] == 2
    common = dict(tower_units=settings.tower_units, tasks=("binary", "binary"))
    mmoe = mm.MMoE(120, n_experts=8, expert_units=(16,), **common).n_params()
    assert abs(mm.models.MODELS[model](120, **common, **sizes).n_params() / mmoe - 1) < 0.05


def test_the_census_builder_takes_a_shared_bottom_without_a_bottom():
    """bottom_units=(): the towers read the embeddings and numeric features directly."""
    import numpy as np

    import minimoe as mm
    data = type("Data", (), {"encoder": type("Encoder", (), {"cardinalities": [5, 3]})(),
                             "task_names": ("a", "b"),
                             "train": (mm.FeatureBatch(np.zeros((4, 2), int), np.zeros((4, 3))), None)})()
    model = census_study.build_census_model("SharedBottom", data, census_study.CensusSettings(bottom_units=()), seed=0)
    assert model.config["bottom_units"] == [] and not any(name.startswith("bottom.") for name in model.params)
