"""The jobrunner service: runner groups ("loops") of slots that dispatch queue batches."""
