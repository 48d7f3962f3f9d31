"""Output (layer 6): what the commands print and write, computed by the layers below.

- ``review.py`` (everything a design review shows, computed once) and ``review_tables.py`` (its
  tables as plain data), ``html_report.py`` (HTML / Markdown), ``xlsx.py``, ``xlsx_review.py``,
  ``xlsx_sweep.py`` (workbooks, openpyxl), ``plots.py`` (the only matplotlib importer),
  ``labels.py`` (words and units for keys);
- ``kv_report.py`` (the ``kv`` rows and the model catalog rows), ``provenance.py``;
- ``export.py``: JSON, CSV and atomic file writing; ``terminal.py`` (tables, console, progress bar)
  and ``render.py`` (the views of plans, what-ifs, sweeps, estimates, simulations): the only
  rich importers besides the CLI.
"""
