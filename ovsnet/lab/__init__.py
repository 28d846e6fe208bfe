"""Simulated hosts on one machine: namespaces, private OVS instances, cables."""
