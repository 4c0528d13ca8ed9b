"""The engine modules the suite reads, wherever the build under test keeps them.

``convcore bench --ab REF`` times this suite against REF's build; builds from before the
layered ``convcore/`` (docs/design.md, "Layers") kept these modules under their flat,
private names.
"""

import importlib

FLAT_NAMES = {
    "convcore.runtime.contention": "convcore._contention",
    "convcore.runtime.options": "convcore._options",
    "convcore.engine.dispatch": "convcore._dispatch",
    "convcore.engine.layer_problem": "convcore._layer_problem",
    "convcore.engine.context": "convcore._context",
}


def module(name):
    """Import engine module `name` (its layered name), or its flat name in an older build."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        if name not in FLAT_NAMES:
            raise
        return importlib.import_module(FLAT_NAMES[name])
