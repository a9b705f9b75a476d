"""What the stages and the ad-hoc trainer do, each in one place: drive the
engine and the analysis, then hand finished results to tracking (which only
writes). Nothing here reads MLflow back: what one stage needs from another
travels in the files that dvc.yaml declares."""
