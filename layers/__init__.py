"""IOC Map layers: schema, registry, database access and query builders."""
