"""The second executor: documents made only of lookups by key run as direct plans (`direct`),
and wide lists are shaped straight from released rows (`fast_path`, `shaper`, `relations`),
answering as graphql-core's executor would (`completion`, `positions`)."""
