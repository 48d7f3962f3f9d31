"""Published numbers of [PRFAAS] (Qin et al., arXiv 2604.15039) that the planner reproduces.

Each table records where it came from. Lengths use the paper's K = 1024 tokens; KV sizes are
MiB (2**20 B) and bandwidths Gbps (1e9 bit/s), as printed.
"""

from __future__ import annotations

K = 1024
LENGTHS_TOKENS = (1 * K, 8 * K, 32 * K, 128 * K)

#: Table 3: measured Phi_kv, Gbps, one 8xH200 instance, SGLang v0.5.9.
TABLE3_SOURCE = "[PRFAAS] Table 3, 8xH200, SGLang v0.5.9"
TABLE3_PHI_KV_GBPS: dict[str, tuple[float, float, float, float]] = {
    "kimi-linear-48b": (1.19, 2.29, 3.87, 4.88),
    "mimo-v2-flash": (0.82, 2.85, 4.66, 4.71),
    "qwen3.5-397b": (4.13, 6.28, 8.25, 7.47),
    "ring-2.5-1t": (7.27, 4.47, 2.59, 1.46),
    "minimax-m2.5": (4.94, 32.87, 59.93, 47.82),
    "qwen3-235b": (4.12, 22.42, 33.35, 21.50),
}
TABLE3_HARDWARE, TABLE3_GPUS = "h200", 8
#: Each Table 3 model's shape on that instance. The paper names the engine but not its launch
#: flags, so a model runs as its publisher's SGLang command for 8 GPUs says (make_instance's
#: keywords; a model not listed takes the engine default, TP 8 with experts sharded by TP, which is
#: what the commands of the others say or leave to the default). The shape matters for a single
#: request: with DP attention one request's attention runs on TP / DP of the GPUs.
TABLE3_DEPLOYMENTS: dict[str, dict] = {
    # SGLang Day-0 MiMo-V2-Flash blog (lm-sys.github.io, 2025-12-15) and SGLang cookbook, H200:
    # --tp-size 8 --dp-size 2 --enable-dp-attention --chunked-prefill-size 16384 (no --ep-size) [S]
    "mimo-v2-flash": {"tp": 8, "dp": 2, "ep": 1, "chunk_tokens": 16_384},
    # MiniMaxAI/MiniMax-M2.5 docs/sglang_deploy_guide.md, 8-GPU command: --tp-size 8 --ep-size 8 [S]
    "minimax-m2.5": {"tp": 8, "ep": 8},
}

#: Table 5: the internal 1T hybrid on one 8xH200 instance (in-house vLLM).
TABLE5_SOURCE = "[PRFAAS] Table 5, 8xH200, in-house vLLM"
TABLE5_MODEL = "prfaas-1t-hybrid"
TABLE5_KV_MIB = (190.8, 308.9, 701.3, 2316.3)
TABLE5_PREFILL_S = (0.44, 0.72, 1.84, 7.40)
TABLE5_PHI_KV_GBPS = (3.61, 3.59, 3.19, 2.62)

#: Table 6: case-study results (section 4), req/s unless stated.
TABLE6_SOURCE = "[PRFAAS] Table 6 and section 4 text"
TABLE6 = {
    "prfaas": {
        # "19.4K" here is 19,400 tokens: p = 0.496 and E[L | L <= t] = 10.2K under the section 4
        # log-normal identify t = 19,400, not 19.4 x 1024 (which gives p = 0.486).
        "threshold_tokens": 19_400,
        "n_prfaas": 4, "n_pd_prefill": 3, "n_pd_decode": 5,
        "theta_prfaas_req_per_s": 1.61, "theta_pd_prefill_req_per_s": 1.64, "theta_pd_decode_req_per_s": 3.91,
        "throughput_req_per_s": 3.24,
        "offload_frac": 0.496, "mean_offloaded_tokens": 44_000, "egress_gbit_per_s": 13.0,
    },
    "homogeneous": {"n_pd_prefill": 9, "n_pd_decode": 3, "theta_pd_prefill_req_per_s": 2.11,
                    "theta_pd_decode_req_per_s": 2.35, "throughput_req_per_s": 2.11},
    "naive": {"n_prfaas": 4, "n_pd_decode": 8, "theta_prfaas_req_per_s": 2.45,
              "theta_pd_decode_req_per_s": 6.25, "throughput_req_per_s": 2.45},
}

#: Table 6's TTFT row (seconds, mean / P90). They match zero-load service times (no queueing):
#: see shared/reference/prfaas-paper.md, section 5, and ``latency/ttft.py``.
TABLE6_TTFT_S = {
    "prfaas": {"ttft_mean_s": 2.22, "ttft_p90_s": 3.51},
    "homogeneous": {"ttft_mean_s": 4.44, "ttft_p90_s": 9.73},
    "naive": {"ttft_mean_s": 1.74, "ttft_p90_s": 3.51},
}
