"""Fleet composition across parts and sites: a scipy.optimize.milp planner (see search.py)."""
