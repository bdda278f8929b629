"""Every dynamic bridge, each a small subclass of the face in ``lsbcore.bridge`` (notebooks 02–06), so
one sampler (``lsbcore.sample``) serves them all. Import the classes from the top level
(``lsb.MatchedBridge``) or from their module (``lsbcore.bridges.matching``)."""
