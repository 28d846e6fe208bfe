"""`ovsnet verify`: real traffic judged against what the topology says should reach.

  matrix.py      the stations, the pairs to ping, and what each pair should do (pure)
  frames.py      tcpdump's frames read and checked per capture point (pure)
  report.py      the result: every pair expected vs seen, findings, probes (pure)
  pings.py       pings many at once, paced for the machine's neighbour table
  capture.py     tcpdump in a lab: where to listen, who owns which MAC
  containers.py  probe containers: chosen, started, labelled, removed
  probing.py     probe containers around one run, and their records
  lab.py         verify_lab: every station of a lab, with captures
  host.py        verify_host: from a real host, its own row

render/verify.py shows a Report as the matrix or as JSON.
"""
