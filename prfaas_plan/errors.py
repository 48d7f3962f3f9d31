"""The one project exception. The CLI turns it into a one-line message and a non-zero exit."""


class PlanError(Exception):
    """Bad input or an infeasible request, with a message fit to show a user as one line.

    Messages name the file (where there is one), the key and what is wrong, e.g.
    ``hardware/h200.yaml: key 'memory.bandwidth_tb_per_s': must be > 0, got -1``.
    """
