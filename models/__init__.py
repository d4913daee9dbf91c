"""neurohdl golden models: numpy only."""
