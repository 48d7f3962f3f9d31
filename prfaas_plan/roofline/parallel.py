"""Parallelism in the engines' spelling (SGLang, TensorRT-LLM), and what it means here.

The engines name a deployment's parallelism by its world size, not by its attention groups:

- ``tp``: the tensor-parallel world size of one pipeline stage (SGLang ``--tp``, TensorRT-LLM
  ``tp_size``); an instance has P = TP x PP GPUs;
- ``dp`` with DP attention on (SGLang ``--dp N --enable-dp-attention``; TensorRT-LLM's
  ``enable_attention_dp`` is DP = TP): attention runs as N data-parallel ranks, each with
  attention TP = TP / DP; the FFN / experts still span the TP world;
- ``ep``: expert-parallel ranks over the stage (SGLang ``--ep``, TensorRT-LLM ``moe_expert_parallel_size``);
- ``pp``: pipeline stages.

:func:`dp_ranks` turns those flags (and the old ``--dp-attention`` / ``dp_attention``, kept as a
deprecated alias meaning DP = TP) into the DP-attention rank count that
:func:`~.instance.make_instance` takes, refusing a flag that would do nothing;
:func:`shape_options` reads the same keys from a file (a scenario cluster's ``instance:``, a
calibration measurement). :meth:`Instance.deployment <.instance.Instance.deployment>` prints a
built instance back in these terms.
"""

from __future__ import annotations

from ..catalog.fields import Fields
from ..errors import PlanError


def dp_ranks(dp: int | None, enable_dp_attention: bool, dp_attention: bool, tp: int | None, prefix: str = "--") -> int | None:
    """The DP-attention ranks for :func:`~.instance.make_instance` (None: the engine default).

    ``dp`` counts only with ``enable_dp_attention`` (SGLang's ``--dp`` without it launches whole
    engine replicas, which are separate instances here); ``dp_attention`` is the deprecated
    alias, DP = TP (TensorRT-LLM's ``enable_attention_dp``), so it needs ``tp``. A DP of 1 with DP
    attention on would do nothing and is refused. ``prefix`` spells the option names: ``--``
    on the command line, ``""`` for file keys."""
    dp_opt, enable_opt, alias_opt = (f"{prefix}dp", f"{prefix}enable-dp-attention", f"{prefix}dp-attention") if prefix else (
        "dp", "enable_dp_attention", "dp_attention")
    tp_opt = f"{prefix}tp" if prefix else "tp"
    named = alias_opt if dp_attention else dp_opt
    if dp_attention:
        if dp is not None or enable_dp_attention:
            raise PlanError(f"{alias_opt}: deprecated alias of {dp_opt} = {tp_opt} {enable_opt}; give one spelling, not both")
        if tp is None:
            raise PlanError(f"{alias_opt}: means DP attention over the whole TP group (DP = TP); give {tp_opt} "
                            f"(the tensor-parallel world size, as in SGLang), or {dp_opt} N {enable_opt}")
        dp = tp
        enable_dp_attention = True
    if dp is None:
        if enable_dp_attention:
            raise PlanError(f"{enable_opt}: give {dp_opt} N, the attention DP ranks that split {tp_opt} (attention TP = TP / DP)")
        return None
    if not enable_dp_attention:
        raise PlanError(f"{dp_opt}: {dp_opt} {dp} without {enable_opt} would be {dp} separate engine replicas; "
                        f"add {enable_opt} to split attention into {dp} ranks, or plan more instances")
    if dp < 2:
        raise PlanError(f"{named}: DP attention with {dp} rank{'s' if dp != 1 else ''} does nothing"
                        + (f" ({tp_opt} 1: the TP world is one GPU; {tp_opt} is the world size, as in SGLang)" if dp == 1 and tp == 1 else "")
                        + f"; give {dp_opt} >= 2 or drop {enable_opt}")
    return dp


#: The parallelism keys of a file's ``instance:`` block (and of a measurement), as in :func:`shape_options`.
PARALLEL_KEYS = ("tp", "dp", "enable_dp_attention", "dp_attention", "ep", "pp")


def shape_options(f: Fields) -> dict:
    """make_instance keywords for the parallelism keys of ``f`` (:data:`PARALLEL_KEYS`), checked by
    :func:`dp_ranks`; errors name the file and key."""
    ints = {k: f.int(k, None, min_value=1) for k in ("tp", "dp", "ep", "pp")}
    enable, alias = f.bool("enable_dp_attention", False), f.bool("dp_attention", False)
    try:
        dp = dp_ranks(ints["dp"], enable, alias, ints["tp"], prefix="")
    except PlanError as exc:
        key = "dp_attention" if alias else ("dp" if ints["dp"] is not None else "enable_dp_attention")
        raise f.error(key, str(exc).partition(": ")[2]) from None  # the message without its leading key name
    return {k: v for k, v in (("tp", ints["tp"]), ("dp", dp), ("ep", ints["ep"]), ("pp", ints["pp"])) if v is not None}
