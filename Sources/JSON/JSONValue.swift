// JSON module: being written (JSONValue, parser, serializer, canonical encoding).
