"""The DVC stages, one module each, run as `python -m pipeline.stages.NAME`:
fetch -> split -> train -> evaluate -> report -> track, and path feeding the report.
No stage imports another; they hand each other the files dvc.yaml declares."""
