// Composes hub subgraphs into a supergraph with @theguild/federation-composition.
// Usage: node compose.mjs OUT.graphql NAME=URL=SDL_FILE ...
// Prints the composition's errors and exits 1 when the subgraphs do not compose.
import { readFileSync, writeFileSync } from "node:fs";
import { parse } from "graphql";
import { composeServices } from "@theguild/federation-composition";

const [out, ...specs] = process.argv.slice(2);
if (!out || specs.length === 0) {
  console.error("usage: node compose.mjs OUT.graphql NAME=URL=SDL_FILE ...");
  process.exit(2);
}
const services = specs.map((spec) => {
  const [name, url, file] = spec.split("=");
  return { name, url, typeDefs: parse(readFileSync(file, "utf8")) };
});
const result = composeServices(services);
if (result.errors && result.errors.length > 0) {
  for (const error of result.errors) console.error(error.message);
  process.exit(1);
}
writeFileSync(out, result.supergraphSdl);
console.log(`composed ${services.length} subgraphs into ${out}`);
