"""How issues are found: models, out-of-fold predictions, issue detectors, the ranked review queue, and
the mining run that ties them together."""
