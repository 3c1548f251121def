"""Annotation import: COCO JSON, YOLO txt and Pascal VOC XML parsed into one neutral form.

See ``docs/labels.md`` for the recognition and matching rules.
"""
