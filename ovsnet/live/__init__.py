"""What is really on a host: its objects as a graph, with drift against the file marked.

snapshot.py turns one read of a host (ovsnet.current.Current) into a networkx
graph of what exists; drift.py marks that graph with the plan `ovsnet plan`
would make (missing, extra, different, foreign; the rest faded); read.py is
the only part that talks to a host or a lab. The pictures are drawn by
ovsnet.render, as for the topology's own graph.
"""
