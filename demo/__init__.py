"""Demo data generator and the training of the bundled demo detector (not part of the service)."""
