"""neurohdl RTL generators (Amaranth 0.5)."""
