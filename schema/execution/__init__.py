"""The second executor: documents made only of lookups by key run as direct plans (`direct`),
and wide lists are shaped straight from released rows (`fast_path`, `shaper`, `relations`,
`positions`), answering as graphql-core's executor would; `run` is the one entry point."""
