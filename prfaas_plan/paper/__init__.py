"""Reproducing [PRFAAS] and the published engine measurements (layer 5, on top of planning).

- ``reference.py``: the paper's published numbers; ``engines.py``: engine measurements
  (``data/engines-train.json``) and each one's deployment as ``estimate`` options;
- ``calibration.py``: the one joint fit of the engine efficiencies; ``bands.py``: its residuals
  per metric kind as error bands; ``validation.py``: Tables 3, 5, 6 and the engine points beside
  the model (``prfaas-plan validate``).
"""
