"""`ovsnet import`: the topology file that describes a host as it is.

describe.py reads one snapshot of the host (ovsnet.current.Current) into the
topology's own model (a Host and the VLANs it uses), with a comment for each
guess and a line for everything it cannot express; write.py turns that into
TOML, alone or added to an existing file; run.py reads the host, settles the
address slices and checks the whole file.
"""
