"""The benchmark (`python -m tools.bench` from a clone): not part of the installed package, since
it is a measurement of the library, and its PyTorch comparison runs the reference's step from
tools/reference/."""
