"""Reproducing [PRFAAS]: its published tables, the one-time H200 calibration to Table 3, and the validation of Tables 3, 5 and 6."""
