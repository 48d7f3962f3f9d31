"""The README's KV-family table: each public config in tests/data imported (`models import`),
deployed with each engine's preset (`kv --engine`), and its per-request cache at 1K/32K/128K.

    python scripts/kv_families.py      # markdown table on stdout

tests/test_engine_kv_table.py holds the same numbers to the engines' own arithmetic within 2%.
"""

from __future__ import annotations

from pathlib import Path

from prfaas_plan import units
from prfaas_plan.catalog.engines import deploy
from prfaas_plan.catalog.hf_import import import_hf_config
from prfaas_plan.catalog.model import model_from_mapping
from prfaas_plan.roofline.kv import kv_cache_bytes

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CONFIGS = ("deepseek_v3_inference_config_671B.json", "kimi_k2.json", "kimi_linear_48b_a3b.json", "qwen3_next_80b_a3b.json",
           "qwen3_5_397b_a17b_ssm_dtype.json", "ring_mini_linear_2_0.json", "mimo_v2_flash.json", "gpt_oss_120b.json",
           "gemma_3_27b_it.json", "minimax_m2.json", "step3.json", "nemotron_h_8b_base_8k.json", "nemotron_nano_9b_v2.json",
           "jamba_v0_1.json", "falcon_h1_7b.json")


def main() -> None:
    print("| config | family | layers | state (vLLM / SGLang) | S_kv MiB 1K / 32K / 128K (vLLM) | SGLang |")
    print("|---|---|---|---|---|---|")
    for config in CONFIGS:
        data, _ = import_hf_config(DATA / config, name="m")
        model = model_from_mapping(data, config)
        vllm, sglang = deploy(model, "vllm")[0], deploy(model, "sglang")[0]
        mib = lambda m: " / ".join(f"{units.bytes_to_mib(kv_cache_bytes(m, t)):,.0f}" for t in (1024, 32768, 131072))  # noqa: E731
        recurrent = vllm.dtypes.linear_state + " / " + sglang.dtypes.linear_state if kv_cache_bytes(model, 0) else "-"
        print(f"| {config[:-5]} | {model.family} | {model.architecture_summary().split(';')[0]} | {recurrent} | {mib(vllm)} | {mib(sglang)} |")


if __name__ == "__main__":
    main()
