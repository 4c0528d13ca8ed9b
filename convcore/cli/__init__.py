"""The ``convcore`` command's parts: the tour, ``calibrate``, ``show_config`` and the
benchmark tool (``bench``). The top of the layers: it may import any of them
(docs/design.md, "Layers")."""
