"""The catalog (hardware/*.yaml, models/*.yaml): every shipped file loads and cites its sources;
GB and GiB are kept as stated; every kind of bad input is one PlanError naming file and key."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from prfaas_plan.catalog.hardware import list_hardware, load_hardware
from prfaas_plan.catalog.model import list_models, load_model
from prfaas_plan.catalog.paths import catalog_dir, catalog_names
from prfaas_plan.errors import PlanError

HARDWARE_NAMES = catalog_names("hardware")
MODEL_NAMES = catalog_names("models")


def _raw(kind: str, name: str) -> dict:
    return yaml.safe_load((catalog_dir(kind) / f"{name}.yaml").read_text(encoding="utf-8"))


def _write(tmp_path: Path, stem: str, data) -> Path:
    path = tmp_path / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- the shipped catalog ------------------------------------------------------------------------


def test_catalog_is_not_empty():
    """The planner ships the parts and models the paper uses."""
    assert {"h200", "h20", "rubin-cpx"} <= set(HARDWARE_NAMES)
    assert {"kimi-linear-48b", "mimo-v2-flash", "qwen3.5-397b", "ring-2.5-1t", "minimax-m2.5", "qwen3-235b", "prfaas-1t-hybrid"} <= set(MODEL_NAMES)


@pytest.mark.parametrize("name", HARDWARE_NAMES)
def test_every_hardware_file_loads_with_sources(name):
    """Each part loads, is named after its file, and lists its sources."""
    hw = load_hardware(name)
    assert hw.name == name
    assert hw.sources and all(s.strip() for s in hw.sources)
    assert hw.memory_capacity_bytes > 0 and hw.memory_bandwidth_bytes_per_s > 0
    assert hw.peak_flop_per_s and all(v > 0 for v in hw.peak_flop_per_s.values())
    assert hw.efficiency.basis in ("calibrated", "derived", "estimate")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_file_loads_with_sources(name):
    """Each model loads, is named after its file, and lists its sources."""
    m = load_model(name)
    assert m.name == name
    assert m.sources and all(s.strip() for s in m.sources)
    assert sum(g.count for g in m.layers) == m.num_layers
    assert m.ffn.dense_layers + m.ffn.moe_layers == m.num_layers


def test_list_functions_cover_the_catalog():
    """list_hardware / list_models load every file of the catalog."""
    assert [h.name for h in list_hardware()] == HARDWARE_NAMES
    assert [m.name for m in list_models()] == MODEL_NAMES


def test_hypothetical_parts_are_flagged():
    """Rubin CPX (off the roadmap, bandwidth unpublished) is hypothetical; shipping parts are not."""
    assert load_hardware("rubin-cpx").hypothetical is True
    for name in ("h100", "h200", "h20"):
        assert load_hardware(name).hypothetical is False


def test_estimates_are_recorded_where_numbers_are_guessed():
    """Parts and models with guessed numbers say so in `estimates`."""
    assert any("bandwidth" in key for key, _ in load_hardware("rubin-cpx").estimates)
    assert load_model("ring-2.5-1t").estimates
    assert load_model("prfaas-1t-hybrid").estimates


def test_h200_capacity_is_141_gb_not_gib():
    """H200's 141 GB is 141e9 bytes as NVIDIA states it, not 141 GiB."""
    hw = load_hardware("h200")
    assert hw.memory_capacity_bytes == 141e9
    assert hw.memory_capacity_as_stated == "141 GB"
    assert load_hardware("h20").memory_capacity_bytes == 96e9


def test_capacity_gib_kept_as_gib(tmp_path):
    """A part stated in GiB is converted with 2**30 and shown as GiB."""
    data = _raw("hardware", "h100")
    data["name"] = "gib-part"
    data["memory"] = {"capacity_gib": 80, "bandwidth_tb_per_s": data["memory"]["bandwidth_tb_per_s"]}
    hw = load_hardware(_write(tmp_path, "gib-part", data))
    assert hw.memory_capacity_bytes == 80 * 2**30
    assert hw.memory_capacity_as_stated == "80 GiB"


def test_load_by_path_equals_load_by_name(tmp_path):
    """A copy of a catalog file given as a path loads to the same part."""
    path = _write(tmp_path, "h200", _raw("hardware", "h200"))
    by_path, by_name = load_hardware(path), load_hardware("h200")
    assert by_path.memory_capacity_bytes == by_name.memory_capacity_bytes
    assert by_path.efficiency == by_name.efficiency


# --- bad input: hardware ------------------------------------------------------------------------


def _walk(d, parts):
    for p in parts:
        d = d[int(p)] if isinstance(d, list) else d[p]
    return d


def _set(path: str, value):
    """Mutation that sets a dotted key; numeric parts index lists (layers.0.kind)."""

    def mutate(d):
        *parents, last = path.split(".")
        d = _walk(d, parents)
        d[int(last) if isinstance(d, list) else last] = value

    return mutate


def _del(path: str):
    """Mutation that deletes a dotted key."""

    def mutate(d):
        *parents, last = path.split(".")
        del _walk(d, parents)[last]

    return mutate


HARDWARE_CASES = [
    # (id, mutation, key the message must name)
    ("unknown-key-typo", _set("memory.capacity_GB", 141), "memory.capacity_GB"),
    ("unknown-top-level-key", _set("power_W", 700), "power_W"),
    ("missing-key", _del("memory.bandwidth_tb_per_s"), "memory.bandwidth_tb_per_s"),
    ("missing-section", _del("interconnect"), "interconnect"),
    ("string-for-number", _set("memory.bandwidth_tb_per_s", "fast"), "memory.bandwidth_tb_per_s"),
    ("bool-for-number", _set("peak.bf16_dense_tflops", True), "peak.bf16_dense_tflops"),
    ("zero", _set("memory.bandwidth_tb_per_s", 0), "memory.bandwidth_tb_per_s"),
    ("negative", _set("memory.capacity_gb", -141), "memory.capacity_gb"),
    ("nan", _set("peak.bf16_dense_tflops", math.nan), "peak.bf16_dense_tflops"),
    ("infinite", _set("interconnect.scaleout_gbit_per_s", math.inf), "interconnect.scaleout_gbit_per_s"),
    ("negative-price", _set("price.rent_usd_per_gpu_hour", -1), "price.rent_usd_per_gpu_hour"),
    ("fraction-above-one", _set("efficiency.gemm_frac", 1.5), "efficiency.gemm_frac"),
    ("negative-overhead", _set("efficiency.request_overhead_s", -0.1), "efficiency.request_overhead_s"),
    ("bad-basis", _set("efficiency.basis", "guessed"), "efficiency.basis"),
    ("gb-and-gib", _set("memory.capacity_gib", 131), "memory.capacity_gb"),
    ("no-peaks", _set("peak", {"bf16_dense_tflops": None}), "peak"),
    ("no-sources", _set("sources", []), "sources"),
    ("name-with-folder", _set("name", "../h201"), "name"),
    ("name-huge-integer", _set("peak.bf16_dense_tflops", 10**400), "peak.bf16_dense_tflops"),
    ("section-not-mapping", _set("memory", [141, 4.8]), "memory"),
]


@pytest.mark.parametrize(("mutate", "key"), [c[1:] for c in HARDWARE_CASES], ids=[c[0] for c in HARDWARE_CASES])
def test_bad_hardware_is_planerror_naming_file_and_key(tmp_path, mutate, key):
    """Each defect in a hardware file is one PlanError naming the file and the key."""
    data = copy.deepcopy(_raw("hardware", "h200"))
    mutate(data)
    path = _write(tmp_path, "h200", data)
    with pytest.raises(PlanError) as err:
        load_hardware(path)
    msg = str(err.value)
    assert str(path) in msg
    assert f"'{key}'" in msg
    assert "\n" not in msg


def test_gb_and_gib_message_names_both(tmp_path):
    """Giving both capacity_gb and capacity_gib says which two keys conflict."""
    data = _raw("hardware", "h200")
    data["memory"]["capacity_gib"] = 131
    with pytest.raises(PlanError, match="capacity_gib"):
        load_hardware(_write(tmp_path, "h200", data))


# --- bad input: files that are not a mapping ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("name: [h200\n", "malformed YAML"),
        ("", "empty"),
        ("# only a comment\n", "empty"),
        ("- h200\n- h20\n", "mapping"),
        ("just a string\n", "mapping"),
    ],
    ids=["malformed", "empty", "comment-only", "top-level-list", "top-level-scalar"],
)
@pytest.mark.parametrize("loader", [load_hardware, load_model], ids=["hardware", "model"])
def test_unreadable_files(tmp_path, loader, text, words):
    """Malformed YAML, empty files and non-mapping documents are one PlanError naming the file."""
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as err:
        loader(path)
    assert str(path) in str(err.value)
    assert words in str(err.value)


def test_malformed_yaml_gives_line(tmp_path):
    """A YAML syntax error points at the line."""
    path = tmp_path / "broken.yaml"
    path.write_text("name: h200\nmemory: {capacity_gb: 141\n", encoding="utf-8")
    with pytest.raises(PlanError, match=r"line \d+"):
        load_hardware(path)


@pytest.mark.parametrize(("loader", "kind", "known"), [(load_hardware, "hardware", "h200"), (load_model, "models", "minimax-m2.5")])
def test_unknown_catalog_name_lists_known_names(loader, kind, known):
    """A misspelt catalog name is a PlanError that lists the names there are."""
    with pytest.raises(PlanError) as err:
        loader("no-such-entry")
    assert "no-such-entry" in str(err.value)
    for name in catalog_names(kind):
        assert name in str(err.value)
    assert known in str(err.value)


def test_missing_file_path(tmp_path):
    """A path that does not exist is a PlanError naming it."""
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(PlanError, match="nowhere.yaml"):
        load_model(path)


# --- bad input: models --------------------------------------------------------------------------


MODEL_CASES = [
    # (id, base model, mutation, key the message must name)
    ("unknown-key-typo", "kimi-linear-48b", _set("hidden_sise", 2304), "hidden_sise"),
    ("unknown-key-in-layer", "kimi-linear-48b", _set("layers.0.kv_heads", 8), "layers[0].kv_heads"),
    ("unknown-key-in-ffn", "kimi-linear-48b", _set("ffn.experts_active", 8), "ffn.experts_active"),
    ("missing-key", "kimi-linear-48b", _del("hidden_size"), "hidden_size"),
    ("missing-layer-key", "kimi-linear-48b", _del("layers.1.key_dim"), "layers[1].key_dim"),
    ("string-for-number", "kimi-linear-48b", _set("hidden_size", "wide"), "hidden_size"),
    ("fractional-count", "kimi-linear-48b", _set("vocab_size", 1000.5), "vocab_size"),
    ("zero", "kimi-linear-48b", _set("num_layers", 0), "num_layers"),
    ("zero-in-layer", "kimi-linear-48b", _set("layers.0.kv_lora_rank", 0), "layers[0].kv_lora_rank"),
    ("negative", "kimi-linear-48b", _set("vocab_size", -5), "vocab_size"),
    ("nan", "kimi-linear-48b", _set("hidden_size", math.nan), "hidden_size"),
    ("nan-published", "kimi-linear-48b", _set("published.total_params_b", math.nan), "published.total_params_b"),
    ("layers-do-not-add-up", "kimi-linear-48b", _set("layers.1.count", 19), "layers"),
    ("dense-plus-moe-not-num-layers", "kimi-linear-48b", _set("ffn.moe_layers", 25), "ffn.moe_layers"),
    ("unknown-layer-kind", "kimi-linear-48b", _set("layers.0.kind", "rwkv"), "layers[0].kind"),
    ("unknown-linear-variant", "kimi-linear-48b", _set("layers.1.variant", "rwkv"), "layers[1].variant"),
    ("unknown-dtype", "kimi-linear-48b", _set("dtypes.weights", "fp7"), "dtypes.weights"),
    ("active-above-experts", "kimi-linear-48b", _set("ffn.active_experts", 300), "ffn.active_experts"),
    ("q-heads-not-multiple-of-kv", "mimo-v2-flash", _set("layers.0.kv_heads", 5), "layers[0].q_heads"),
    ("empty-layers", "minimax-m2.5", _set("layers", []), "layers"),
    ("no-sources", "minimax-m2.5", _set("sources", []), "sources"),
    ("name-with-slash", "minimax-m2.5", _set("name", "a/b"), "name"),
    ("count-with-hundreds-of-digits", "minimax-m2.5", _set("hidden_size", 10**300), "hidden_size"),
    ("profile-not-increasing", "prfaas-1t-hybrid", _set("profiles.0.points.1.input_tokens", 512), "profiles[0].points"),
    ("profile-negative-time", "prfaas-1t-hybrid", _set("profiles.0.points.0.prefill_time_s", -0.4), "profiles[0].points[0].prefill_time_s"),
]


@pytest.mark.parametrize(("base", "mutate_spec", "key"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_bad_model_is_planerror_naming_file_and_key(tmp_path, base, mutate_spec, key):
    """Each defect in a model file is one PlanError naming the file and the key."""
    data = copy.deepcopy(_raw("models", base))
    mutate_spec(data)
    path = _write(tmp_path, base, data)
    with pytest.raises(PlanError) as err:
        load_model(path)
    msg = str(err.value)
    assert str(path) in msg
    assert f"'{key}'" in msg
    assert "\n" not in msg
