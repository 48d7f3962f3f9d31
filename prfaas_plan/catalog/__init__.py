"""The catalog: facts read from YAML, checked strictly, with no formulas (layer 1; roofline does
the arithmetic).

- ``hardware.py``: accelerator parts (datasheet peaks, memory, links, prices) and their
  efficiency settings, kept apart; ``model.py``: model architectures (layer stack by attention
  kind, FFN, dtypes, measured profiles); ``engines.py``: serving-engine presets as data;
- ``hf_import.py`` and ``hf_layout.py``: a Hugging Face ``config.json`` turned into a model YAML;
- ``paths.py``: where the shipped catalog lives and resolving a name (case-insensitive, with
  "did you mean") or a path; ``fields.py``, ``strict_yaml.py``, ``files.py``: strict, bounded
  reading of YAML and input files, every error one line naming the file and key.
"""
