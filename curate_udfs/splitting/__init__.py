"""Shot splitting: TransNetV2 cut detection or fixed strides, into [start, end) frame spans."""
