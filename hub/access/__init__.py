"""One request's access, in the order it runs: the plan decided once (`plan`), the rows read
under it (`read`, with `semijoin` for row rules through a relation, `cursor` for pages and
`budget` for the value bound), their release column by column (`release`) and the access
record it yields (`record`)."""
