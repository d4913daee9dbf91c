"""Block descriptors; importing a module registers its block."""
