pytest_plugins = ["tests.support.network_guard", "tests.support.standin_fixtures", "tests.support.db"]
