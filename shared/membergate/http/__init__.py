"""The HTTP edge: request/response schemas (pydantic), error mapping, pages."""
