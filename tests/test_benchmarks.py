"""``benchmarks/throughput.py``: a tiny end-to-end run, the peak-FLOP estimate, and the machine description."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from busi_folders import write_busi_phantoms, write_normal_scans

from rdanet_gan.errors import RdanetError
from rdanet_gan.evaluation.evaluate import score_probability_maps
from rdanet_gan.evaluation.scoring import score_predictions
from rdanet_gan.machine import describe_machine
from rdanet_gan.models import build_model, count_flops

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SIZE, WIDTH = 32, 4


def load_benchmark(name: str):
    """``benchmarks/NAME.py`` as a module, for its functions (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def throughput():
    """The script as a module, for its pure functions (it imports its sibling ``pipeline_throughput``)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        module = load_benchmark("throughput")
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[dict, str]:
    """A tiny run of the whole script: the critic (the cheapest network), float32 against mixed_bfloat16."""
    out_dir = tmp_path_factory.mktemp("throughput")
    env = {key: value for key, value in os.environ.items() if key != "RDANET_BUSI_DIR"}  # phantoms: no data needed
    command = [
        sys.executable, str(BENCHMARKS / "throughput.py"), "--quick", "--networks", "critic",
        "--image-size", str(SIZE), "--base-width", str(WIDTH), "--precisions", "float32", "mixed_bfloat16", "--jit", "off", "--steps", "1", "--latency-steps", "2",
        "--out-dir", str(out_dir),
    ]  # fmt: skip
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads((out_dir / "throughput.json").read_text()), (out_dir / "throughput.md").read_text()


def test_quick_run_records_the_configurations_and_the_machine(quick_run):
    report, _ = quick_run
    assert [(r["network"], r["setting"]) for r in report["results"]] == [
        ("critic", "float32"),
        ("critic", "mixed_bfloat16"),
    ]
    assert report["device"] == "CPU" or report["device"].startswith("GPU")
    assert report["settings"]["quick"] is True
    assert report["settings"]["image_size"] == SIZE
    assert {"cpu", "cores", "cpu_flags", "gpus", "tensorflow", "keras"} <= set(report["machine"])
    assert report["peak"]["assumptions"]
    for row in report["results"]:
        assert row["error"] is None
        assert row["peak_memory_mib"] > row["memory_before_mib"] >= 0


def test_quick_run_measures_training_and_inference(quick_run):
    report, _ = quick_run
    critic_flops = count_flops(build_model("critic", input_shape=(SIZE, SIZE, 2), base_width=WIDTH)) / 1e9
    for row in report["results"]:
        assert math.isclose(row["forward_gflops_per_image"], critic_flops)
        measured = row["measurements"]
        assert set(measured) == {"training", "inference_b32", "inference_b1"}
        for name, batch_size, passes in (("training", 32, 3), ("inference_b32", 32, 1), ("inference_b1", 1, 1)):
            m = measured[name]
            assert m["batch_size"] == batch_size
            assert m["images_per_second"] > 0 and m["first_call_seconds"] > 0 and m["timed_steps"] >= 1
            assert m["step_ms_p90"] >= m["step_ms_median"] > 0
            assert math.isclose(m["achieved_gflops"], m["images_per_second"] * passes * critic_flops)
            assert m["fraction_of_peak"] > 0
        assert measured["training"]["timed_steps"] == 1
        assert measured["inference_b1"]["timed_steps"] <= 2


def test_quick_run_compares_with_float32(quick_run):
    report, _ = quick_run
    baseline, fast = (row["measurements"] for row in report["results"])
    assert not any("ratio_to_float32" in m for m in baseline.values())
    for name, measurement in fast.items():
        expected = measurement["images_per_second"] / baseline[name]["images_per_second"]
        assert math.isclose(measurement["ratio_to_float32"], expected)


def test_quick_run_measures_the_input_pipeline_on_phantoms(quick_run):
    report, _ = quick_run
    pipeline = report["pipeline"]
    assert pipeline["source"].startswith("phantoms")
    assert pipeline["image_size"] == SIZE
    assert len(pipeline["images_per_second"]) == 2
    assert all(rate > 0 for rate in pipeline["images_per_second"].values())


def test_quick_run_writes_a_markdown_table(quick_run):
    _, text = quick_run
    table = [line for line in text.splitlines() if line.startswith("| critic |")]
    assert len(table) == 2
    assert table[0].startswith("| critic | float32 |") and "(×" not in table[0]
    assert table[1].startswith("| critic | mixed_bfloat16 |") and "(×" in table[1]
    header = next(line for line in text.splitlines() if line.startswith("| network |"))
    assert {line.count("|") for line in table} == {header.count("|")}


def test_gan_measurement_times_both_steps(throughput, capsys):
    """The GAN's configuration, measured in this process (a TensorFlow start-up saved): critic and generator steps."""
    config = {
        "network": "rdanet-gan", "precision": "float32", "jit": False, "image_size": SIZE, "base_width": WIDTH,
        "steps": 1, "warmup": 0, "latency_steps": 1, "max_seconds": 0,
    }  # fmt: skip
    throughput.measure_gan(config)
    tag = throughput.RESULT_TAG
    records = [json.loads(line[len(tag) :]) for line in capsys.readouterr().out.splitlines() if line.startswith(tag)]
    steps = {record["measurement"]: record for record in records if "measurement" in record}
    assert set(steps) == {"critic_step", "generator_step"}
    for step in steps.values():
        assert step["batch_size"] == 32 and step["timed_steps"] == 1 and step["images_per_second"] > 0
    flops = next(record["forward_gflops_per_image"] for record in records if "forward_gflops_per_image" in record)
    generator = build_model("rdau-net", input_shape=(SIZE, SIZE, 1), base_width=WIDTH)
    assert math.isclose(flops["generator"], count_flops(generator) / 1e9)


def test_gan_mean_step_and_work(throughput):
    """The mean step averages the two step times; work follows the stated G + 12 C and 3 G + 2 C."""
    gan = {
        "network": "rdanet-gan", "precision": "float32", "jit": False,
        "forward_gflops_per_image": {"generator": 2.0, "critic": 0.5},
        "measurements": {"critic_step": {"images_per_second": 20.0}, "generator_step": {"images_per_second": 5.0}},
    }  # fmt: skip
    throughput.add_derived([gan], {"gflops": {"float32": 100.0}})
    measured = gan["measurements"]
    assert math.isclose(measured["gan_step_mean"]["images_per_second"], 8.0)  # 32 images in (1.6 + 6.4) / 2 s
    assert math.isclose(measured["critic_step"]["work_gflops_per_image"], 2.0 + 12 * 0.5)
    assert math.isclose(measured["generator_step"]["work_gflops_per_image"], 3 * 2.0 + 2 * 0.5)
    assert math.isclose(measured["gan_step_mean"]["achieved_gflops"], 8.0 * (8.0 + 7.0) / 2)
    assert math.isclose(measured["critic_step"]["fraction_of_peak"], 20.0 * 8.0 / 100.0)


def test_compared_settings_put_the_baseline_first(throughput):
    assert throughput.compared_settings(["mixed_bfloat16"], "float32") == [
        ("float32", False),
        ("mixed_bfloat16", False),
        ("float32", True),
    ]
    assert throughput.compared_settings(["mixed_bfloat16", "float32"], "off") == [
        ("float32", False),
        ("mixed_bfloat16", False),
    ]
    assert throughput.compared_settings(["float32"], "all") == [("float32", False), ("float32", True)]


def machine(flags: list[str], cores: int = 4, mhz: float = 2000.0) -> dict:
    return {"physical_cores": cores, "cpu_mhz": mhz, "cpu_flags": flags, "gpus": []}


@pytest.mark.parametrize(
    ("flags", "float32", "bfloat16"),
    [
        (["fma", "avx2"], 4 * 2.0 * 32, 4 * 2.0 * 32),  # AVX2: bf16 only emulated
        (["fma", "avx2", "avx512f"], 4 * 2.0 * 64, 4 * 2.0 * 64),
        (["fma", "avx2", "avx512f", "avx512_bf16"], 4 * 2.0 * 64, 4 * 2.0 * 128),
        (["fma", "avx2", "avx512f", "avx512_bf16", "amx_bf16"], 4 * 2.0 * 64, 4 * 2.0 * 1024),
    ],
)
def test_cpu_peak_is_cores_times_clock_times_flops_per_cycle(throughput, flags, float32, bfloat16):
    peak = throughput.estimate_peak(machine(flags), None)
    assert math.isclose(peak["gflops"]["float32"], float32)
    assert math.isclose(peak["gflops"]["bfloat16"], bfloat16)
    assert "4 cores" in peak["assumptions"]


def test_peak_override_and_unknown_hardware(throughput):
    assert throughput.estimate_peak(machine(["avx2"]), 1234.0)["gflops"]["bfloat16"] == 1234.0
    assert throughput.estimate_peak(machine(["avx2"], mhz=None), None)["gflops"] is None
    unknown_gpu = {**machine(["avx2"]), "gpus": ["Some Future Accelerator"]}
    assert throughput.estimate_peak(unknown_gpu, None)["gflops"] is None


@pytest.mark.parametrize(
    ("name", "bfloat16_tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.4),
        ("NVIDIA A100-SXM4-80GB", 312.0),
    ],
)
def test_gpu_peak_from_the_datasheet_table(throughput, name, bfloat16_tflops):
    peak = throughput.estimate_peak({**machine([]), "gpus": [name]}, None)
    assert math.isclose(peak["gflops"]["bfloat16"], 1e3 * bfloat16_tflops)
    assert peak["gflops"]["float32"] < peak["gflops"]["bfloat16"]


def test_describe_machine_reads_cpuinfo(tmp_path):
    block = (
        "processor\t: {index}\nmodel name\t: Test CPU 9000\nphysical id\t: 0\ncore id\t\t: {core}\ncpu MHz\t\t: {mhz}\n"
    )
    block += "flags\t\t: fpu sse2 fma avx2 avx512f avx512_bf16 amx_tile\n"
    text = "\n".join(block.format(index=i, core=i // 2, mhz=2000 + i) for i in range(4))  # 2 cores, 2 threads each
    (tmp_path / "cpuinfo").write_text(text)
    described = describe_machine(tmp_path / "cpuinfo")
    assert described["cpu"] == "Test CPU 9000"
    assert described["physical_cores"] == 2
    assert described["cpu_mhz"] == 2003.0
    assert described["cpu_flags"] == ["fma", "avx2", "avx512f", "avx512_bf16", "amx_tile"]
    assert {"cores", "gpus", "python", "tensorflow", "keras"} <= set(described)


@pytest.fixture
def split_leakage(monkeypatch):
    """``benchmarks/split_leakage.py`` as a module, drawing 4 test and 4 validation scans."""
    module = load_benchmark("split_leakage")
    monkeypatch.setattr(module, "TEST", 4)
    monkeypatch.setattr(module, "VALIDATION", 4)
    return module


def test_split_leakage_counts_test_scans_with_a_near_duplicate_in_training(phantom_folder, split_leakage):
    similar = np.zeros((6, 6), dtype=bool)
    similar[0, 4] = similar[4, 0] = similar[1, 2] = similar[2, 1] = True
    # Test scans 0 and 1; training scans 3, 4, 5: only scan 0 has a copy (4) in training.
    assert split_leakage.leaked(similar, np.array([0, 1]), np.array([3, 4, 5])) == 1

    records = sorted(path.name for path in (phantom_folder / "images").iterdir())
    case_ids = [f"images/{name}" for name in records]
    split = phantom_folder.parent / "leakage_split.json"
    split.write_text(json.dumps({"train": case_ids[8:], "validation": case_ids[4:8], "test": case_ids[:4]}))
    results = split_leakage.measure(phantom_folder, split, splits=20)
    assert set(results["thresholds"]) == {"0.99", "0.95", "0.90"}
    for entry in results["thresholds"].values():
        assert 0 <= entry["random_min"] <= entry["random_mean"] <= entry["random_max"] <= 4
        assert entry["split_file"] == 0  # independent phantoms are never near-duplicates
    assert "| 0.90 |" in split_leakage.markdown(results, str(split))
    assert results["split_file_skipped"] == 0 and "not counted" not in split_leakage.markdown(results, str(split))


def test_split_leakage_counts_the_lesion_free_scans_of_a_split_apart(tmp_path, split_leakage):
    write_busi_phantoms(tmp_path / "busi", benign=8, malignant=4, size=32)
    write_normal_scans(tmp_path / "busi", count=3, size=32)
    lesion = [f"{label}/{label} ({index}).png" for index, label in enumerate(["benign"] * 8 + ["malignant"] * 4)]
    normal = [f"normal/normal ({index}).png" for index in (1, 2)]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": lesion[6:] + normal[:1], "validation": lesion[3:6], "test": lesion[:3] + normal[1:]}))
    results = split_leakage.measure(tmp_path / "busi", split, splits=5)
    assert results["scans"] == 12 and results["split_file_skipped"] == 2
    assert all(entry["split_file"] == 0 for entry in results["thresholds"].values())
    note = f"`{split}` lists 2 scans that are not lesion scans of the dataset (e.g. normal/): not counted."
    assert split_leakage.markdown(results, str(split)).endswith(note)


def test_prediction_speed_times_both_batch_sizes_and_reports_ratios_to_keras():
    module = load_benchmark("prediction_speed")
    seen = []
    timing = module.timed(lambda images: seen.append(len(images)), np.zeros((4, 8, 8, 1), np.float32), steps=2)
    assert seen == [4, 4, 4, 1] + [1] * 16  # warm-up, timed batches, warm-up, timed single scans
    assert timing["images_per_second"] > 0 and timing["latency_ms_p90"] >= timing["latency_ms_median"] > 0
    rows = {
        "keras float32": {"images_per_second": 10.0, "latency_ms_median": 100.0, "latency_ms_p90": 120.0, "largest_difference": 0.0},
        "litert int8": {
            "images_per_second": 25.0, "latency_ms_median": 40.0, "latency_ms_p90": 50.0, "largest_difference": 0.3,
            "megabytes": 1.5, "validation_dice": 0.7,
        },
    }  # fmt: skip
    report = {"networks": {"tiny": rows}, "date": "today", "command": "c", "interpreter": "i"}
    report["machine"] = {"cpu": "cpu", "cores": 2, "tensorflow": "2.21"}
    table = module.markdown(report)
    assert "| tiny | litert int8 | 25.0 (×2.50) | 40.0 / 50.0 (×0.40) | 1.5 | 0.3 | 0.7000 |" in table


def test_int8_sensitivity_ranks_tensors_and_keeps_the_worst_in_float(tmp_path):
    from rdanet_gan.inference.litert import LiteRTSegmenter, export_litert

    module = load_benchmark("int8_sensitivity")
    model = build_model("unet", input_shape=(32, 32, 1), base_width=4)
    scans = np.random.default_rng(0).random((8, 32, 32, 1), dtype=np.float32)
    ranking = module.ranked_tensors(model, scans)
    errors = [row["error_steps"] for row in ranking]
    assert len(ranking) > 5 and errors == sorted(errors, reverse=True) and errors[0] > 0
    mixed = module.selective_export(model, scans, [row["tensor"] for row in ranking[:3]], tmp_path / "mixed.tflite")
    full = export_litert(model, tmp_path / "int8.tflite", "int8", calibration=scans)
    assert mixed.stat().st_size > full.stat().st_size  # float weights where int8 ones were
    reference = model.predict_on_batch(scans)
    assert np.abs(LiteRTSegmenter(mixed)(scans) - reference).max() < 0.1


@pytest.fixture
def campaign():
    return load_benchmark("campaign")


def test_campaign_progress_reads_a_finished_stage_from_its_committed_log(tmp_path, monkeypatch, campaign):
    committed, out = tmp_path / "committed", tmp_path / "runs"
    monkeypatch.setattr(campaign, "COMMITTED", committed)
    (committed / "rdau-net").mkdir(parents=True)
    (committed / "rdau-net" / "log.csv").write_text("epoch,val_dice,seconds\n1,0.4,10\n2,0.6,12\n3,0.5,14\n")
    (out / "unet").mkdir(parents=True)  # the run folder of a new machine: only the running stage
    (out / "unet" / "log.csv").write_text("epoch,val_dice,seconds\n1,0.3,100\n")
    rows = {row["stage"]: row for row in campaign.stage_rows(out)}
    assert rows["rdau-net"]["epochs"] == 3 and rows["rdau-net"]["best_epoch"] == 2 and rows["rdau-net"]["seconds_per_epoch"] == 14
    assert rows["unet"]["epochs"] == 1 and rows["segnet"]["epochs"] == 0
    command = campaign.reproduce_command("DATA", str(out), "unet,segnet", base_width=32)
    assert command[-2:] == ["--base-width", "32"]
    assert "--models unet,segnet --base-width 32\n" in campaign.progress_markdown(out, command)


def test_campaign_collect_commits_finished_stages_and_rewrites_table1(tmp_path, monkeypatch, campaign):
    committed, out = tmp_path / "committed", tmp_path / "runs"
    monkeypatch.setattr(campaign, "COMMITTED", committed)
    rng = np.random.default_rng(0)
    truths = [rng.random((16, 16)) > 0.6 for _ in range(4)]
    for stage in ("rdanet-gan", "unet"):  # finished in the run folder; SegNet not yet
        maps = [np.clip(truth + rng.normal(0, 0.4, truth.shape), 0, 1) for truth in truths]
        score_probability_maps(maps, truths).write_json(out / stage / "evaluation" / "summary.json")
        (out / stage / "log.csv").write_text("epoch,val_dice,seconds\n1,0.5,10\n")
    (out / "segnet").mkdir()
    assert campaign.collect(out) == ["rdanet-gan", "unet"]
    assert sorted(path.name for path in (committed / "unet").iterdir()) == ["evaluation.json", "log.csv"]
    table = (committed / "table1.md").read_text()
    assert "| U-Net | ours | 4 |" in table and "RDA-NET-GAN minus U-Net" in table and "SegNet | ours" not in table


def test_prediction_profile_cuts_the_model_after_each_stage_and_differences_their_times():
    sys.path.insert(0, str(BENCHMARKS))  # it imports its sibling prediction_speed
    module = load_benchmark("prediction_profile")
    model = build_model("rdau-net", input_shape=(32, 32, 1), base_width=4, encoder="mobilenet_v2", encoder_weights=None)
    cuts = [module.cut(model, stage, layer) for stage, layer in module.CUTS.items()]
    assert all(part.layers[-1].name == "mask" and part.output_shape[-1] == 1 for part in cuts)  # each exports alike
    flops = [count_flops(part) for part in cuts]
    assert flops == sorted(flops) and flops[-1] < count_flops(model) + 2 * 8 * 32 * 32  # growing, up to the model
    stages = {"a": {"seconds_per_batch": 0.1, "gflops_per_image": 0.002}, "b": {"seconds_per_batch": 0.3, "gflops_per_image": 0.001}}
    rows = {"images_per_second": 100.0, "gflop_per_second": 1.0}
    report = {"probe": {"gflops_per_image": 1.0, "litert float32": rows}, "stages": stages, "date": "today", "command": "c"}
    report |= {"default": {"gflops_per_image": 0.003, "keras float32": rows}, "machine": {"cpu": "cpu", "cores": 2}}
    report["float32_ceiling_images_per_second"] = 333.0
    table = module.markdown(report)
    assert "| a | 100.0 | 25% | 67% | 0.6 |" in table and "×3.33 Keras float32" in table


@pytest.fixture(scope="module")
def presence_crossfit():
    return load_benchmark("presence_crossfit")


def test_presence_operating_point_flags_at_most_a_fifth_of_the_lesion_free_scans(presence_crossfit):
    has_lesion = np.array([True] * 4 + [False] * 10)
    scores = np.array([0.9, 0.8, 0.3, 0.1, *np.linspace(0.0, 0.45, 10)])  # lesion-free: 0.0, 0.05, ... 0.45
    point = presence_crossfit.operating_point(scores, has_lesion, dice=np.array([0.8, 0.6, 0.5, 0.9]))
    assert point["flagged"] == pytest.approx(0.2)  # 0.4 and 0.45: two of ten
    assert point["emptied"] == 2 and point["lesion_dice"] == pytest.approx((0.8 + 0.6) / 4)


def test_presence_cross_fitting_scores_each_scan_with_a_fit_that_did_not_see_it(presence_crossfit, monkeypatch):
    rng = np.random.default_rng(0)
    has_lesion = np.array([True] * 10 + [False] * 10)
    features = rng.normal(size=(20, 3)) + has_lesion[:, None] * 2.0
    seen = []
    fit = presence_crossfit.fit_presence
    monkeypatch.setattr(presence_crossfit, "fit_presence", lambda x, y, l2: seen.append(int(y.sum())) or fit(x, y, l2))
    scores = presence_crossfit.cross_fitted(features, has_lesion, rng)
    assert seen == [8] * 5  # five folds, each holding out two scans of each class
    assert scores[has_lesion].mean() > scores[~has_lesion].mean()


def test_presence_mask_statistics_read_the_peak_the_area_and_the_mean_inside(presence_crossfit):
    probabilities = np.zeros((2, 4, 4))
    probabilities[0, :2, :2] = 0.9
    masks = probabilities > 0.5
    statistics = presence_crossfit.mask_statistics(probabilities, masks)
    assert statistics[0] == pytest.approx([np.log(9.0), np.log(5.0), 0.9])
    assert statistics[1, 1:] == pytest.approx([0.0, 0.0]) and statistics[1, 0] < -15


def test_presence_comparison_refuses_a_model_file_it_cannot_use_in_one_line(presence_crossfit, tmp_path, capsys):
    (tmp_path / "model.keras").write_bytes(b"not a model")
    argv = ["--model", str(tmp_path / "model.keras"), "--data", "phantom", "--split", str(tmp_path / "split.json")]
    assert presence_crossfit.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"presence_crossfit: error: {tmp_path / 'model.keras'}: ")


@pytest.fixture(scope="module")
def operating_point():
    return load_benchmark("operating_point")


def _recorded(levels: dict[float, tuple[float, float]]) -> dict:
    """An inference-settings record: per level, (lesion per-image Dice, lesion-free flagged)."""
    return {
        "threshold": 0.5,
        "chosen": "all",
        "validation_dice": {"plain": 0.70, "all": 0.78},
        "validation_by_presence": {f"{level:g}": {"lesion_dice_per_image": d, "lesion_free_flagged": f} for level, (d, f) in levels.items()},
    }


def test_operating_point_reads_the_lowest_level_of_the_chosen_grid_within_the_target(operating_point, tmp_path, capsys):
    scored = {0.0: (0.78, 0.4)} | {level: (0.78, 0.3) for level in operating_point.PRESENCE_LEVELS[1:]}
    scored |= {0.97: (0.77, 0.18), 0.98: (0.76, 0.18), 0.999: (0.70, 0.1)}  # 0.97 is on the current grid only
    scored |= {level: (0.6, 0.05) for level in operating_point.PRESENCE_LEVELS if level > 0.999}
    record = _recorded(scored)
    earlier = operating_point.operating_point(record, operating_point.EARLIER_LEVELS, 0.2)
    current = operating_point.operating_point(record, operating_point.PRESENCE_LEVELS, 0.2)
    assert (earlier["level"], earlier["lesion_dice"], earlier["pooled"]) == (0.98, 0.76, 0.78)
    assert (current["level"], current["lesion_dice"], current["lesion_dice_none"]) == (0.97, 0.77, 0.78)
    (tmp_path / "a.inference.json").write_text(json.dumps(record))
    assert operating_point.main([str(tmp_path / "a.inference.json"), "--grid", "earlier"]) == 0
    assert "| 0.780 | 0.98 | 0.760 / 0.780 | 18% / 40% |" in capsys.readouterr().out


def test_operating_point_refuses_a_file_calibrated_on_another_grid_in_one_line(operating_point, tmp_path, capsys):
    path = tmp_path / "old.inference.json"
    path.write_text(json.dumps(_recorded({level: (0.7, 0.1) for level in operating_point.EARLIER_LEVELS})))
    assert operating_point.main([str(path), "--grid", "earlier"]) == 0
    assert operating_point.main([str(path)]) == 1  # the current grid has levels this file never scored
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"{path}: ValueError: levels [0.93")


def test_cross_validation_plans_only_what_is_left_and_pools_the_folds_test_scans(tmp_path):
    module = load_benchmark("cross_validation")
    options = ["--model", "rdau-net", "--epochs", "2"]
    first = module.fold_commands("BUSI", tmp_path, 2, 0, options)
    assert [[step[1] for step in steps] for steps in first] == [["split", "train", "evaluate", "evaluate"]] * 2
    assert [step[step.index("--out") + 1] for step in first[0][2:]] == [str(tmp_path / "fold1" / name) for name in ("test", "test-no-level")]
    assert first[1][0][first[1][0].index("--fold") + 1] == "2" and "--resume" not in first[0][1]
    (tmp_path / "fold1.json").write_text("{}")
    (tmp_path / "fold1").mkdir()
    (tmp_path / "fold1" / "config.json").write_text("{}")  # a killed training: resumed
    assert [step[1] for step in module.fold_commands("BUSI", tmp_path, 2, 0, options)[0]] == ["train", "evaluate", "evaluate"]
    assert module.fold_commands("BUSI", tmp_path, 2, 0, options)[0][0][-1] == "--resume"
    (tmp_path / "run.json").write_text(json.dumps({"folds": 2, "seed": 0, "train_options": options}))
    (tmp_path / "fold1" / "log.csv").write_text("epoch,val_dice\n1,0.4\n2,0.5\n")
    (tmp_path / "fold1" / "best.json").write_text(json.dumps({"monitor": "val_dice", "best": 0.5, "epoch": 2}))
    progress = module.progress_markdown(tmp_path)
    assert "| 1 | 2 of 2 | 0.5000 (2) | no |" in progress and "| 2 | 0 of 2 | – | no |" in progress
    assert f"--out $RUNS/{tmp_path.name} --folds 2 --seed 0 -- --model rdau-net --epochs 2" in progress
    assert str(tmp_path.parent) not in progress  # no path of this machine

    rng = np.random.default_rng(0)
    truths = [rng.random((8, 8)) > 0.5 for _ in range(6)]
    predictions = [rng.random((8, 8)) > 0.4 for _ in range(6)]
    for number, (start, stop) in enumerate(((0, 4), (4, 6)), start=1):
        test = tmp_path / f"fold{number}" / "test"
        test.mkdir(parents=True, exist_ok=True)
        ids = [f"{'benign' if i % 2 else 'malignant'}/scan{i}.png" for i in range(start, stop)]
        score_predictions(predictions[start:stop], truths[start:stop], ids=ids).write_json(test / "summary.json")
        (test / "normal_scans.json").write_text(json.dumps({"scans": 3, "flagged_with_settings": number}))
    results, text = module.report(tmp_path, 2)
    assert results["pooled"]["dice"] == pytest.approx(score_predictions(predictions, truths).pooled["dice"])
    assert results["interval"][0] <= results["pooled"]["dice"] <= results["interval"][1]
    assert [fold["lesion_scans"] for fold in results["folds"].values()] == [4, 2]
    assert "| 2 | 2 |" in text and "| class: benign | 3 |" in text
    for number in (1, 2):  # the same scores with no presence level, where no lesion-free scan was counted
        (tmp_path / f"fold{number}" / "test-no-level").mkdir()
        (tmp_path / f"fold{number}" / "test" / "summary.json").rename(tmp_path / f"fold{number}" / "test-no-level" / "summary.json")
    no_level, text = module.report(tmp_path, 2, "test-no-level")
    assert no_level["pooled"] == results["pooled"] and "lesion_free_flagged" not in no_level["folds"][1] and "| – |" in text
    with pytest.raises(RdanetError, match="no fold evaluated yet"):
        module.report(tmp_path / "empty", 2)
