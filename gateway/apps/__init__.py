"""The applications on the public API: the command line (`cli`), the brief's demo (`demo`),
the market simulation (`simulate`) and the price-feed runners (`feeds`)."""
