"""``param_count``: how many numbers a layer learns, for the course's comparisons."""

import math

from convcore.engine.shapes import LAYOUTS, _pair, output_shape

KINDS = ("conv", "unshared", "tiled", "pool", "fully_connected")


def param_count(input_shape, kernel_size, *, filters=None, kind="conv", stride=1, padding=0,
                dilation=1, groups=1, tiles=None, bias=True, layout="HWC"):
    """Number of learned parameters of a layer on `input_shape` (weights plus biases).

    Parameters
    ----------
    input_shape : tuple of int
        The layer's input in `layout`, e.g. ``(64, 64, 3)``.
    kernel_size : int or (int, int)
    filters : int
        Output channels K (not needed for ``kind='pool'``).
    kind : {'conv', 'unshared', 'tiled', 'pool', 'fully_connected'}
        'conv': one kernel set shared by every position, ``K * C / groups * kh * kw + K``.
        'unshared': one kernel set and bias per output position, ``Ho * Wo`` times conv's.
        'tiled': ``t_h * t_w`` kernel sets (biases tiled alike).
        'pool': 0.
        'fully_connected': every input to every output of the conv layer's output shape,
        ``(H W C) * (Ho Wo K) + Ho Wo K``.
    stride, padding, dilation : optional
        As for :func:`convcore.output_shape` (they set Ho and Wo).
    groups : int, optional
        For 'conv'.
    tiles : int or (int, int), optional
        (t_h, t_w), for 'tiled'.
    bias : bool, optional
        Count biases.
    layout : {'HWC', 'CHW', 'NHWC', 'NCHW'}

    Returns
    -------
    int

    Examples
    --------
    The course's case: a 64x64x3 input, two 5x5 filters, output 60x60x2.

    >>> from convcore import param_count
    >>> param_count((64, 64, 3), 5, filters=2)
    152
    >>> param_count((64, 64, 3), 5, filters=2, kind="unshared") == 60 * 60 * 152
    True
    >>> param_count((64, 64, 3), 5, filters=2, kind="tiled", tiles=2)
    608
    >>> param_count((64, 64, 3), 5, filters=2, kind="fully_connected", bias=False)
    88473600
    >>> param_count((64, 64, 3), 2, kind="pool", stride=2)
    0
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if kind == "pool":
        return 0
    if isinstance(filters, bool) or not isinstance(filters, int) or filters < 1:
        raise ValueError(f"filters must be a positive int, got {filters!r}")
    out = output_shape(input_shape, kernel_size, stride=stride, padding=padding,
                       dilation=dilation, filters=filters, layout=layout)
    dims = dict(zip(layout, input_shape))
    out_dims = dict(zip(layout, out))
    channels, positions = dims["C"], out_dims["H"] * out_dims["W"]
    kh, kw = _pair(kernel_size, "kernel_size")
    biases = filters if bias else 0
    if kind == "fully_connected":
        return math.prod(dims[a] for a in "HWC") * positions * filters + positions * biases
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or \
            channels % groups or filters % groups:
        raise ValueError(f"groups must be a positive int dividing the channels ({channels}) "
                         f"and filters ({filters}), got {groups!r}")
    if groups != 1 and kind != "conv":
        raise ValueError(f"groups applies to kind='conv', not {kind!r}")
    shared = filters * (channels // groups) * kh * kw + biases
    if kind == "conv":
        return shared
    if kind == "unshared":
        return positions * shared
    if tiles is None:
        raise ValueError("tiles must be given for kind='tiled' (an int or (t_h, t_w))")
    th, tw = _pair(tiles, "tiles")
    if th < 1 or tw < 1 or th > out_dims["H"] or tw > out_dims["W"]:
        raise ValueError(f"tiles must be between 1 and the output size "
                         f"{(out_dims['H'], out_dims['W'])}, got {tiles!r}")
    return th * tw * shared
