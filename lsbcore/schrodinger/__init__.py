"""The static Schrödinger problem: Sinkhorn on samples, Fortet/IPF on a grid, the Gaussian closed form."""
