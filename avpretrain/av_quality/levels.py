"""The quality levels of the 0-100 MOS scale, shared by the head, the task and the MOS tools.

Five levels, each ``LEVEL_WIDTH`` points wide (0-20 bad ... 80-100 excellent); a leaf module
(no pandas or scipy), so the model side can import it without the rating tools.
"""

LEVEL_WIDTH = 20.0  # five levels of 20 points on the 0-100 scale
