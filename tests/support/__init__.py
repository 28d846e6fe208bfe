"""What the tests and the benchmarks share to build and inspect a simulated host.

Plain modules, no pytest: bench/ scripts import them too (they put the
repository root on sys.path), so the host a benchmark measures is the host
the tests prove correct. The pytest fixtures stay in the conftest.py files
as thin wrappers around these.

- topologies: the seed-like topology texts (node1 alone, N tagged ports).
- commands:   running ip / ovs-vsctl and reading their JSON.
- labhost:    namespaces, a private OVS, the uplink to a gateway namespace,
              objects that are not ovsnet's, and a whole host for scripts.
- leaks:      processes, pids and descriptors, to tell what a run left behind.
- dockerlab:  what the real-engine tests need, and the lab's Docker processes.
- vms:        the VM scenarios' bed (vagrant/vmbed), gate and timings.
"""
