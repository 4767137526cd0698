"""DynamoDB adapters: PynamoDB models stay in here, repositories map to domain objects."""
