"""neurohdl co-simulation: cocotb runner, drivers, scoreboards, testbenches."""
