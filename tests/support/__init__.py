"""Test infrastructure shared by the whole suite: the network guard and the stand-in fixtures."""
