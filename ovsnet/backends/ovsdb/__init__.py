"""OVSDB through python-ovs: the connection (connection.py), the transaction builder ops write through (txn.py), the snapshot reader (read.py)."""

from ovsnet.backends.ovsdb.connection import Ovsdb

__all__ = ["Ovsdb"]
