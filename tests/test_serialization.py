import numpy as np
import pytest

import minimoe as mm


def make_model(**overrides):
    arguments = dict(n_features=4, n_experts=3, expert_units=(5,), tower_units=(2,), gate_units=(3,),
                     tasks=("binary", "regression"), task_names=("click", "duration"), seed=4) | overrides
    return mm.MMoE(**arguments)


@pytest.mark.parametrize("build", [
    make_model,
    lambda: mm.SharedBottom(4, bottom_units=(6, 3), tower_units=(), tasks=("regression",), dtype=np.float32),
    lambda: mm.OMoE(4, n_experts=2, expert_units=(3, 2), init="he_normal"),
])
def test_round_trip(build, tmp_path, rng):
    model = build()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = mm.load(path)
    assert type(loaded) is type(model) and loaded.config == model.config
    X = rng.standard_normal((6, 4))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.dtype == model.dtype
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]      # no temporary file left behind


def test_load_weights_into_the_same_architecture(tmp_path, rng):
    source, target = make_model(seed=1), make_model(seed=2)
    source.save(tmp_path / "m.npz")
    target.load_weights(tmp_path / "m.npz")
    X = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(source.forward(X), target.forward(X))


def test_load_weights_refuses_another_architecture(tmp_path):
    make_model().save(tmp_path / "m.npz")
    other = make_model(n_experts=4)
    before = {name: value.copy() for name, value in other.params.items()}
    with pytest.raises(ValueError, match=r"another architecture.*'n_experts': \(3, 4\)"):
        other.load_weights(tmp_path / "m.npz")
    for name, value in other.params.items():                        # untouched: never half-loaded
        np.testing.assert_array_equal(value, before[name])
    with pytest.raises(ValueError, match="holds a MMoE"):
        mm.OMoE(4, n_experts=3, expert_units=(5,), tower_units=(2,), gate_units=(3,)).load_weights(tmp_path / "m.npz")


def test_corrupt_and_foreign_files_raise_clearly(tmp_path):
    path = tmp_path / "m.npz"
    make_model().save(path)
    data = path.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.npz is not a readable minimoe model file"):
        mm.load(tmp_path / "truncated.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a readable minimoe model file"):
        mm.load(tmp_path / "text.npz")
    np.savez(tmp_path / "plain.npz", W=np.zeros(3))
    with pytest.raises(ValueError, match="not a minimoe model file"):
        mm.load(tmp_path / "plain.npz")
    with pytest.raises(FileNotFoundError):
        mm.load(tmp_path / "missing.npz")


def test_a_file_with_a_wrong_shape_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    model = make_model()
    model.save(path)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["levels.0.experts.shared.W0"] = np.zeros((3, 4, 6))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"parameter levels.0.experts.shared.W0 has shape \(3, 4, 6\)"):
        mm.load(path)


def test_save_overwrites_atomically(tmp_path, rng):
    path = tmp_path / "m.npz"
    make_model(seed=1).save(path)
    second = make_model(seed=2)
    second.save(path)
    X = rng.standard_normal((2, 4))
    np.testing.assert_array_equal(mm.load(path).forward(X), second.forward(X))
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("cls", [mm.SharedBottom, mm.OMoE, mm.MMoE, mm.CGC, mm.PLE, mm.ESMM])
def test_config_is_every_constructor_argument_with_its_defaults(cls):
    """The config is derived from the constructor's signature, defaults included: every argument
    but the seed (and the input layer, recorded only when there is one) is in it, and it rebuilds
    the same architecture."""
    import inspect

    model = cls(5)
    expected = {name for name in inspect.signature(cls.__init__).parameters
                if name not in ("self", "seed", "inputs", "backbone_options")}
    assert expected <= set(model.config), expected - set(model.config)
    assert cls(**model.config).config == model.config


def test_esmm_records_the_backbone_sizes_it_defaulted_to():
    assert mm.ESMM(5).config["bottom_units"] == []                          # the paper's: no shared bottom
    assert mm.ESMM(5, bottom_units=(8,)).config["bottom_units"] == [8]
    mmoe = mm.ESMM(5, backbone="mmoe", n_experts=3)
    assert mmoe.config["n_experts"] == 3 and mmoe.config["expert_units"] == mm.MMoE(5).config["expert_units"]
    assert mm.PLE(5, n_task_experts=2).config["n_task_experts"] == [2, 2]   # one effective count per task
