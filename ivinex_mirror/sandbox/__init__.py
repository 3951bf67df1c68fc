"""A local stand-in for an Ivinex instance, for tests and demonstrations.

`generate_instance` makes a deterministic CRM full of realistic, messy data;
`SandboxServer` serves it over HTTP with the wire contract the client speaks,
and can be told to fail in each of the ways a real instance fails.
"""

from ivinex_mirror.sandbox.faults import FaultPlan
from ivinex_mirror.sandbox.generate import generate_instance
from ivinex_mirror.sandbox.instance import Instance
from ivinex_mirror.sandbox.server import SandboxServer

__all__ = ["FaultPlan", "Instance", "SandboxServer", "generate_instance"]
