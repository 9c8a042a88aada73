from tests.integration.conftest import api, auth, key  # noqa: F401 - the same app fixtures
