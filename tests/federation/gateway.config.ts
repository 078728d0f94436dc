// Hive Gateway's configuration for the hub federation test (and bench/w6_gateway.py).
//
// The gateway authenticates the caller by its own means: here, a bearer token looked up in
// HUB_GATEWAY_CALLERS (a JSON object, token -> app name), standing in for whatever a real
// deployment uses (OIDC, mTLS). For every subgraph request it then sends the hub a fresh
// Ed25519-signed assertion naming only that app (docs/federation.md, hub/crypto/assertion.py):
//   x-hub-gateway-assertion: v1.<base64url {"app","iat","exp"}>.<base64url signature>
// signed with HUB_GATEWAY_PRIVATE_KEY (PKCS#8 PEM), valid 30 s. The caller's purpose header is
// passed on as it is; nothing else of the client's request reaches the hubs.
import { createPrivateKey, sign } from "node:crypto";
import { defineConfig } from "@graphql-hive/gateway";

const privateKey = createPrivateKey(process.env.HUB_GATEWAY_PRIVATE_KEY ?? "");
const callers: Record<string, string> = JSON.parse(process.env.HUB_GATEWAY_CALLERS ?? "{}");
const LIFETIME = 30;

function base64url(data: Buffer): string {
  return data.toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function assertion(app: string): string {
  const iat = Math.floor(Date.now() / 1000);
  const payload = base64url(Buffer.from(JSON.stringify({ app, iat, exp: iat + LIFETIME })));
  const head = `v1.${payload}`;
  return `${head}.${base64url(sign(null, Buffer.from(head), privateKey))}`;
}

function callerOf(request: Request): string | undefined {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) return undefined;
  return Object.prototype.hasOwnProperty.call(callers, match[1]) ? callers[match[1]] : undefined;
}

export const gatewayConfig = defineConfig({
  supergraph: process.env.HUB_SUPERGRAPH ?? "./supergraph.graphql",
  // The hubs' own errors (withheld fields, codes) reach the caller as the hubs wrote them.
  maskedErrors: false,
  plugins: () => [
    {
      // A caller the gateway does not know is refused here, before any hub is asked.
      onRequest({ request, endResponse, fetchAPI }) {
        const url = new URL(request.url);
        if (url.pathname === "/graphql" && !callerOf(request)) {
          endResponse(
            new fetchAPI.Response(
              JSON.stringify({ errors: [{ message: "unknown caller", extensions: { code: "UNAUTHENTICATED" } }] }),
              { status: 401, headers: { "content-type": "application/json" } },
            ),
          );
        }
      },
    },
  ],
  propagateHeaders: {
    fromClientToSubgraphs({ request }) {
      const app = callerOf(request);
      const headers: Record<string, string> = {};
      if (app) headers["x-hub-gateway-assertion"] = assertion(app);
      const purpose = request.headers.get("x-hub-purpose");
      if (purpose) headers["x-hub-purpose"] = purpose.slice(0, 64);
      return headers;
    },
  },
});
