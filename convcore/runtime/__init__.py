"""The process's runtime state, below the engine: the thread setting and the native-thread
budget (``threads``), other processes' load (``contention``), process options
(``options``), the freed-results pool (``result_cache``), the user cache folder
(``user_cache``). Nothing here imports the engine (docs/design.md, "Layers")."""
