"""Simulation engines: ODE integration kernels and random numbers for stochastic kernels."""
