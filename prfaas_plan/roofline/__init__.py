"""The engine model (layer 2): closed-form KV size, counts and pass times of one serving instance.

- ``instance.py``: an instance (part, GPUs, parallelism, dtypes) and where its bytes live;
  ``parallel.py``: parallelism in the engines' spelling (``--tp --dp --enable-dp-attention``);
- ``kv.py`` (S_kv by attention kind), ``counts.py`` (parameters, FLOPs, bytes), ``terms.py`` (one
  pass priced term by physical term), ``prefill.py``, ``decode.py``, ``estimate.py`` (``estimate``);
- ``fit.py`` and ``bench_files.py`` (``calibrate`` on a user's measurements), ``microbench.py`` and
  ``sfu_kernel.py`` (kernel ceilings on a local GPU), ``bands.py`` and ``band_data.py`` (error
  bands of the calibration); ``elementwise.py`` (numpy's element-wise helpers, without numpy for
  plain numbers).
"""
