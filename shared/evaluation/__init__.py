"""The active detector against a collection's labels: mAP@0.5 and @0.5:0.95 per class."""
