"""How people review: the Label Studio server, client and labeling config; pushing the queue, pulling
verdicts, consensus of annotators, and the simulated reviewer."""
