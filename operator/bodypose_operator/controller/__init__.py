"""The controller: kopf handlers that observe, decide and record; nothing else."""
