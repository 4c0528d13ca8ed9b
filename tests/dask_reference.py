"""References for the convcore.dask tests: SciPy on an array extended by NumPy's np.pad.

``np.pad`` implements every boundary rule on its own (constant, wrap, symmetric, reflect,
edge), so SciPy's 'valid' convolution of the padded array is an answer that shares no code
with convcore: 'full' pads by the kernel's length - 1 on each side, 'same' is the centred
part of that (SciPy's rule: start ``(m - 1) // 2``, and ``m // 2`` for correlate2d).
"""

import numpy as np
import scipy.signal

PAD_MODES = {"fill": "constant", "wrap": "wrap", "symm": "symmetric", "mirror": "reflect",
             "nearest": "edge"}


def scipy_reference(x, k, mode, boundary="fill", fillvalue=0, operation="convolve",
                    late_centre=False):
    """SciPy's answer for a boundary convcore supports, in SciPy's result dtype."""
    function = scipy.signal.convolve if operation == "convolve" else scipy.signal.correlate
    if mode == "valid":
        return function(x, k, "valid", method="direct")
    pads = [(m - 1, m - 1) for m in k.shape]
    extra = {"constant_values": fillvalue} if boundary == "fill" else {}
    if x.dtype.kind in "biu" and boundary == "fill":
        extra["constant_values"] = np.array(fillvalue).astype(x.dtype)
    padded = np.pad(x, pads, PAD_MODES[boundary], **extra)
    full = function(padded, k, "valid", method="direct")
    if mode == "full":
        return full
    starts = [m // 2 if late_centre else (m - 1) // 2 for m in k.shape]
    return full[tuple(slice(s, s + n) for s, n in zip(starts, x.shape))]
