"""How models ship: training on the labels in force, the model registry, the promotion gate,
deployment, scoring new data with the champion, and serving predictions."""
