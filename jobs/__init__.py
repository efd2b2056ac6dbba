"""What the clock triggers: the scheduler and one module per job."""
