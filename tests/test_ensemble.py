"""Ensembles of segmenters (``rdanet_gan.models.build_ensemble``): the mean of the members' logits."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

import rdanet_gan  # noqa: F401 - registers the package's Keras objects, as a user's script would
from rdanet_gan.errors import ModelFileError
from rdanet_gan.inference.ensemble_file import write_ensemble_file
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.models import build_ensemble, build_model, build_rdau_net, build_unet
from rdanet_gan.models.blocks import sigmoid_mask_layer

SIZE = 32


@pytest.fixture(scope="module")
def members() -> list[keras.Model]:
    keras.utils.set_random_seed(0)
    return [
        build_rdau_net(input_shape=(SIZE, SIZE, 1), base_width=4, name="first"),
        build_unet(input_shape=(SIZE, SIZE, 1), base_width=4, name="second"),
    ]


@pytest.fixture(scope="module")
def scans() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(3, SIZE, SIZE, 1)).astype("float32")


def logits(model: keras.Model, scans: np.ndarray) -> np.ndarray:
    return keras.Model(model.input, sigmoid_mask_layer(model).input)(scans, training=False).numpy()


def test_the_ensemble_is_the_sigmoid_of_the_mean_logit(members, scans):
    expected = 1 / (1 + np.exp(-np.mean([logits(member, scans) for member in members], axis=0)))
    ensemble = build_ensemble(members)
    np.testing.assert_allclose(ensemble.predict(scans, verbose=0), expected, atol=1e-5)
    assert sigmoid_mask_layer(ensemble) is not None  # a segmenter like one network: calibrate, export, presence head


def test_with_presence_all_the_mean_logits_are_capped_by_the_lowest_member_peak(members, scans):
    member_logits = [logits(member, scans) for member in members]
    lowest_peak = np.min([value.max(axis=(1, 2, 3), keepdims=True) for value in member_logits], axis=0)
    expected = 1 / (1 + np.exp(-np.minimum(np.mean(member_logits, axis=0), lowest_peak)))
    ensemble = build_ensemble(members, presence="all")
    np.testing.assert_allclose(ensemble.predict(scans, verbose=0), expected, atol=1e-5)
    # so its peak never exceeds a member's: a lesion only one member sees is not reported at any level
    assert np.all(logits(ensemble, scans).max(axis=(1, 2, 3)) <= lowest_peak.reshape(-1) + 1e-5)


def test_a_member_that_sees_no_lesion_empties_the_scan_with_presence_all(scans):
    keras.utils.set_random_seed(1)
    sure = build_unet(input_shape=(SIZE, SIZE, 1), base_width=4, name="sure")
    unsure = build_unet(input_shape=(SIZE, SIZE, 1), base_width=4, name="unsure")
    for model, bias in ((sure, 20.0), (unsure, -20.0)):  # the last convolution's bias sets every pixel's logit
        last = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][-1]
        kernel, _ = last.get_weights()
        last.set_weights([np.zeros_like(kernel), np.full(kernel.shape[-1], bias, kernel.dtype)])
    assert build_ensemble([sure, unsure]).predict(scans, verbose=0).max() == pytest.approx(0.5, abs=1e-6)
    assert build_ensemble([sure, unsure], presence="all").predict(scans, verbose=0).max() < 1e-6
    with pytest.raises(ValueError, match="presence must be one of mean, all"):
        build_ensemble([sure, unsure], presence="any")


@pytest.mark.parametrize("presence", ["mean", "all"])
def test_a_saved_ensemble_loads_in_safe_mode_and_predicts_the_same(members, scans, tmp_path, presence):
    ensemble = build_ensemble(members, presence=presence)
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = load_segmenter(tmp_path / "ensemble.keras")
    np.testing.assert_allclose(loaded.predict(scans, verbose=0), ensemble.predict(scans, verbose=0), atol=1e-6)


def test_members_must_be_segmenters_on_one_input_shape(members):
    with pytest.raises(ValueError, match="at least two"):
        build_ensemble(members[:1])
    other = build_model("unet", input_shape=(2 * SIZE, 2 * SIZE, 1), base_width=4)
    with pytest.raises(ValueError, match="member 1"):
        build_ensemble([members[0], other])
    critic = build_model("critic", input_shape=(SIZE, SIZE, 2), base_width=4)
    with pytest.raises(ValueError, match="no sigmoid output layer 'mask'"):
        build_ensemble([critic, members[0]])


def test_the_ensemble_command_writes_a_model_that_predicts_like_the_ensemble(members, scans, tmp_path, capsys):
    from rdanet_gan.cli import main

    paths = [tmp_path / f"{member.name}.keras" for member in members]
    for member, path in zip(members, paths, strict=True):
        member.save(path)
    out = tmp_path / "both.keras"
    assert main(["ensemble", *map(str, paths), "--out", str(out)]) == 0
    assert "ensemble of 2 models" in capsys.readouterr().out
    expected = build_ensemble(members).predict(scans, verbose=0)
    np.testing.assert_allclose(load_segmenter(out).predict(scans, verbose=0), expected, atol=1e-6)
    assert main(["ensemble", *map(str, paths), "--out", str(out)]) == 2  # never replaced without --overwrite
    assert "already exists" in capsys.readouterr().err
    capped = tmp_path / "capped.keras"
    assert main(["ensemble", *map(str, paths), "--presence", "all", "--out", str(capped)]) == 0
    assert "(all presence)" in capsys.readouterr().out
    expected = build_ensemble(members, presence="all").predict(scans, verbose=0)
    np.testing.assert_allclose(load_segmenter(capped).predict(scans, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("one", "at least two models, got 1"),
        ("not keras", "is written as a .keras file"),
        ("member", "an input model; write the new model to another file"),
        ("litert", "first.tflite: a LiteRT export cannot be a member"),
        ("sizes", f"wide.keras: takes ({2 * SIZE}, {2 * SIZE}) scans"),
    ],
)
def test_the_ensemble_command_refuses_what_it_cannot_average(members, tmp_path, capsys, case, message):
    from rdanet_gan.cli import main

    first = tmp_path / "first.keras"
    members[0].save(first)
    build_model("unet", input_shape=(2 * SIZE, 2 * SIZE, 1), base_width=4).save(tmp_path / "wide.keras")
    (tmp_path / "first.tflite").write_bytes(b"")
    models, out = {
        "one": ([first], tmp_path / "out.keras"),
        "not keras": ([first, first], tmp_path / "out.h5"),
        "member": ([first, first], first),
        "litert": ([first, tmp_path / "first.tflite"], tmp_path / "out.keras"),
        "sizes": ([first, tmp_path / "wide.keras"], tmp_path / "out.keras"),
    }[case]
    assert main(["ensemble", *map(str, models), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out.keras").exists()


def test_an_ensemble_file_names_its_members_and_loads_as_the_same_ensemble(members, scans, tmp_path, capsys):
    from rdanet_gan.cli import main

    folder = tmp_path / "members"
    folder.mkdir()
    paths = [folder / f"{member.name}.keras" for member in members]
    for member, path in zip(members, paths, strict=True):
        member.save(path)
    out = tmp_path / "both.json"
    assert main(["ensemble", *map(str, paths), "--presence", "all", "--out", str(out)]) == 0
    assert "named, not copied" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert [entry["file"] for entry in record["members"]] == ["members/first.keras", "members/second.keras"]
    assert out.stat().st_size < 1000  # no weights in it
    expected = build_ensemble(members, presence="all").predict(scans, verbose=0)
    np.testing.assert_allclose(load_segmenter(out).predict(scans, verbose=0), expected, atol=1e-6)
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path, moved, ignore=shutil.ignore_patterns("elsewhere"))  # the file and its members move together
    np.testing.assert_allclose(load_segmenter(moved / "both.json").predict(scans, verbose=0), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("changed member", "both.json: member first.keras changed since the ensemble file was written"),
        ("missing member", "both.json: member first.keras is missing"),
        ("not an ensemble", "both.json: not an ensemble file"),
        ("one member", "both.json: damaged ensemble file"),
        ("not json", "both.json: not a readable ensemble file"),
    ],
)
def test_a_damaged_ensemble_file_is_one_line_naming_it(members, tmp_path, damage, message):
    paths = [tmp_path / f"{member.name}.keras" for member in members]
    for member, path in zip(members, paths, strict=True):
        member.save(path)
    out = write_ensemble_file(tmp_path / "both.json", paths)
    record = json.loads(out.read_text())
    if damage == "changed member":
        members[1].save(paths[0])
    elif damage == "missing member":
        paths[0].unlink()
    elif damage == "not an ensemble":
        out.write_text(json.dumps({"threshold": 0.5}))
    elif damage == "one member":
        out.write_text(json.dumps({**record, "members": record["members"][:1]}))
    else:
        out.write_text("{")
    with pytest.raises(ModelFileError) as error:
        load_segmenter(out)
    assert message in str(error.value) and len(str(error.value).splitlines()) == 1


def test_an_ensemble_file_takes_model_files_only(members, tmp_path, capsys):
    from rdanet_gan.cli import main

    first, second = tmp_path / "first.keras", tmp_path / "second.keras"
    members[0].save(first)
    members[1].save(second)
    assert main(["ensemble", str(first), str(second), "--out", str(tmp_path / "pair.json")]) == 0
    capsys.readouterr()
    assert main(["ensemble", str(first), str(tmp_path / "pair.json"), "--out", str(tmp_path / "nested.json")]) == 2
    assert "pair.json: a member of a .json ensemble file must be a .keras or .npz model file" in capsys.readouterr().err
    assert not (tmp_path / "nested.json").exists()
