"""RQ worker processes: detection + ROI embedding jobs. Imports ``shared`` only."""
