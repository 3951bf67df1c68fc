import pytest

from ivinex_mirror.client import IvinexClient

# A password no data could contain by chance, to look for it where it must not be.
PASSWORD = "Kx9!pw-never-stored-7Q"


@pytest.fixture
def sandbox():
    """A small sandbox of its own for a test that changes data or faults."""
    from ivinex_mirror.sandbox import SandboxServer, generate_instance

    with SandboxServer(generate_instance(seed=3, scale=0.1), password=PASSWORD) as s:
        yield s


@pytest.fixture
def make_client():
    clients = []

    def make(server, **options):
        options.setdefault("retries", 2)
        options.setdefault("backoff_factor", 0)
        client = IvinexClient(server.url, "demo", PASSWORD, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
