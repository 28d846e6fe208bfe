"""ovsnet: container networks on Open vSwitch from one declarative file."""

__version__ = "0.1.0"
