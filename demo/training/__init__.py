"""Training of the bundled demo detector: target assignment, loss, data, schedule, loop."""
