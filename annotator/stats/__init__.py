"""Pure statistics on arrays (numpy, scipy): reliability, intervals and the bootstrap, tests, paired
figures. Nothing here imports the rest of annotator (a test holds it to that)."""
