"""Building blocks of the Git store, one concept per module: identity, tree layout, commit
metadata, compare-and-swap refs, and packing."""
