"""Label Studio: the local server (:mod:`.server`), the client interface (:mod:`.client`) and what a
reviewer sees (:mod:`.labeling`)."""
