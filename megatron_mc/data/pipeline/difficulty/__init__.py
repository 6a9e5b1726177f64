"""Difficulty for the filter stage: predict per-dimension scores (an LLM judge or heuristics), calibrate
them against pass rates a reference policy reaches on anchor problems, select by calibrated pass rate."""
