"""Code shared by every step of the pipeline; copied into each function's asset."""
