"""Image decoding (hostile-input safe) and the content-addressed image store."""
