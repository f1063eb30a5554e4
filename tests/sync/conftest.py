from tests.sync.harness import county, county_tree  # noqa: F401  (fixtures)
